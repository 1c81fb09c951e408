/* registry.c - the process-wide table of workflow definitions behind wf_workflow_register().
 *
 * WF_WORKFLOW's constructor adds the file's static definition here when the program starts or a
 * module is dlopened; wf_worker_new() copies what it finds. The table only grows and holds
 * borrowed pointers to static definitions (modules are never unloaded), so entries stay valid for
 * the life of the process. A mutex makes registration from concurrent dlopen calls safe.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "wf_internal.h"
#include "wf_log.h"
#include "wf_registry.h"

static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static const wf_workflow_def **table; /* borrowed definitions */
static int table_len, table_cap;

int wf_workflow_register(const wf_workflow_def *def)
{
    if (!def || !def->handler) return WF_ERR_INVALID;
    if (!def->name || !wf__name_valid(def->name)) {
        wf__log(WF__LOG_ERROR,
                "cannot register workflow '%s': names are 1-128 characters of [A-Za-z0-9._-] "
                "starting with a letter or digit (WF_WORKFLOW_NAME comes from the file name)",
                def->name ? def->name : "(null)");
        return WF_ERR_BAD_NAME;
    }
    int rc = WF_OK;
    pthread_mutex_lock(&table_lock);
    for (int i = 0; i < table_len; i++) {
        if (strcmp(table[i]->name, def->name) == 0) {
            rc = table[i] == def ? WF_OK : WF_ERR_EXISTS;
            goto out;
        }
    }
    if (table_len == table_cap) {
        int cap = table_cap ? table_cap * 2 : 16;
        const wf_workflow_def **t = realloc(table, sizeof *t * (size_t)cap);
        if (!t) {
            rc = WF_ERR_NOMEM;
            goto out;
        }
        table = t;
        table_cap = cap;
    }
    table[table_len++] = def;
out:
    pthread_mutex_unlock(&table_lock);
    if (rc == WF_ERR_EXISTS)
        wf__log(WF__LOG_ERROR,
                "workflow '%s' is defined twice in this process (two modules or files with one "
                "name); the second definition is ignored",
                def->name);
    return rc;
}

int wf_workflow_count(void)
{
    pthread_mutex_lock(&table_lock);
    int n = table_len;
    pthread_mutex_unlock(&table_lock);
    return n;
}

const wf_workflow_def *wf_workflow_at(int i)
{
    pthread_mutex_lock(&table_lock);
    const wf_workflow_def *d = i >= 0 && i < table_len ? table[i] : NULL;
    pthread_mutex_unlock(&table_lock);
    return d;
}

int wf__registry_find_module(const void *module_base, const char *module_name,
                             const wf_workflow_def **out, int max)
{
    int n = 0;
    pthread_mutex_lock(&table_lock);
    for (int i = 0; i < table_len && n < max; i++) {
        if (!module_base && !module_name) {
            out[n++] = table[i];
            continue;
        }
        Dl_info info;
        if (!dladdr(table[i], &info)) continue;
        if ((module_base && info.dli_fbase == module_base) ||
            (module_name && info.dli_fname && strcmp(info.dli_fname, module_name) == 0))
            out[n++] = table[i];
    }
    pthread_mutex_unlock(&table_lock);
    return n;
}
