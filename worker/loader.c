/* loader.c - loading workflow modules: every NAME.so that wf_add_workflows() built into a folder.
 *
 * dlopen(RTLD_NOW) runs the module's WF_WORKFLOW constructor, which adds its definition to the
 * process-wide table (registry.c); we then ask the table which definitions live inside that
 * module (by address, through dladdr), so loading the same folder twice, or a folder whose module
 * was already loaded by the program, still reports the right definitions. Modules are never
 * unloaded: handlers may run until the process exits.
 */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wf_log.h"
#include "wf_registry.h"

static int is_module(const struct dirent *d)
{
    size_t n = strlen(d->d_name);
    return d->d_name[0] != '.' && n > 3 && strcmp(d->d_name + n - 3, ".so") == 0;
}

/* Appends the definitions made by the module `h` (loaded from `path`) to *out. */
static int collect(void *h, const char *path, const wf_workflow_def ***out, int *nout,
                   wf_error *err)
{
    struct link_map *lm = NULL;
    if (dlinfo(h, RTLD_DI_LINKMAP, &lm) != 0 || !lm)
        return wf_error_set(err, WF_ERR_SYSTEM, "cannot inspect workflow module %s: %s", path,
                            dlerror());
    int max = wf_workflow_count();
    if (max == 0) return 0;
    const wf_workflow_def **found = malloc(sizeof *found * (size_t)max);
    if (!found) return wf_error_set(err, WF_ERR_NOMEM, "out of memory");
    int n = wf__registry_find_module((const void *)lm->l_addr, lm->l_name, found, max);
    if (n > 0) {
        const wf_workflow_def **grown = realloc(*out, sizeof **out * (size_t)(*nout + n));
        if (!grown) {
            free(found);
            return wf_error_set(err, WF_ERR_NOMEM, "out of memory");
        }
        memcpy(grown + *nout, found, sizeof *found * (size_t)n);
        *out = grown;
        *nout += n;
    }
    free(found);
    return n;
}

int wf__load_dir(const char *dir, const wf_workflow_def ***out, int *nout, wf_error *err)
{
    if (!dir || !*dir) return wf_error_set(err, WF_ERR_INVALID, "no workflow directory given");
    struct dirent **names = NULL;
    int n = scandir(dir, &names, is_module, alphasort);
    if (n < 0)
        return wf_error_set(err, WF_ERR_SYSTEM, "cannot read workflow directory %s: %s", dir,
                            strerror(errno));
    int total = 0, rc = WF_OK;
    for (int i = 0; i < n; i++) {
        if (rc != WF_OK) {
            free(names[i]);
            continue;
        }
        char path[4096];
        int pl = snprintf(path, sizeof path, "%s/%s", dir, names[i]->d_name);
        free(names[i]);
        if (pl < 0 || (size_t)pl >= sizeof path) {
            rc = wf_error_set(err, WF_ERR_INVALID, "workflow module path too long in %s", dir);
            continue;
        }
        void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        if (!h) {
            const char *why = dlerror();
            rc = wf_error_set(err, WF_ERR_SYSTEM, "cannot load workflow module %s: %s", path,
                              why ? why : "unknown dlopen error");
            continue;
        }
        int got = collect(h, path, out, nout, err);
        if (got < 0) {
            rc = got;
            continue;
        }
        if (got == 0)
            wf__log(WF__LOG_WARN,
                    "module %s defines no workflow (no WF_WORKFLOW, or a name defined twice); "
                    "skipped",
                    path);
        else
            wf__log(WF__LOG_DEBUG, "loaded workflow module %s (%d workflow%s)", path, got,
                    got == 1 ? "" : "s");
        total += got;
    }
    free(names);
    return rc != WF_OK ? rc : total;
}
