/* wf_registry.h - where a worker's workflow definitions come from: the process-wide table that
 * WF_WORKFLOW constructors fill (registry.c) and the loader of workflow modules (loader.c).
 */
#ifndef WF_REGISTRY_H
#define WF_REGISTRY_H

#include "wf/wf.h"

/* ---- The process-wide table of definitions (registry.c) ----------------------------------- */

/* Snapshot of the table: the definitions whose address lies inside the module loaded at
 * `base` (NULL: all). Fills up to `max` pointers, returns how many matched. */
int wf__registry_find_module(const void *module_base, const char *module_name,
                             const wf_workflow_def **out, int max);

/* ---- Loading modules (loader.c) ------------------------------------------------------------ */

/* dlopens every *.so in `dir` (sorted by name, RTLD_NOW) so their WF_WORKFLOW constructors fill
 * the process-wide table. Appends the definitions each module made to `out` (grown with realloc;
 * caller frees the array, not the definitions) and returns how many, or an error naming the file.
 */
int wf__load_dir(const char *dir, const wf_workflow_def ***out, int *nout, wf_error *err);

#endif
