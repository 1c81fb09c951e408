/* registry.c - refusing a workflow name that no worker ever registered (the P:workflows hash
 * that `wf workflows` lists), so a typo in `wf limit publsh-draft` is an error naming the close
 * matches instead of a limit stored for nothing. --force skips the check. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* Edit distance between `a` and `b` (insert, delete, substitute; ASCII case ignored), capped at
 * 99 for long names. */
static size_t distance(const char *a, const char *b)
{
    size_t n = strlen(a), m = strlen(b);
    if (n > 64 || m > 64) return 99;
    size_t row[65];
    for (size_t j = 0; j <= m; j++) row[j] = j;
    for (size_t i = 1; i <= n; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= m; j++) {
            size_t up = row[j];
            int ca = a[i - 1] | 0x20, cb = b[j - 1] | 0x20; /* letters compare ignoring case */
            size_t best = diag + (ca != cb);
            if (up + 1 < best) best = up + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[m];
}

/* A registered name counts as close when it is a few edits away (a third of the longer name,
 * at least 2) or when one name begins with the other. */
static int close_to(const char *typed, const char *name, size_t *d)
{
    size_t lt = strlen(typed), ln = strlen(name), longer = lt > ln ? lt : ln;
    size_t limit = longer / 3 > 2 ? longer / 3 : 2;
    *d = distance(typed, name);
    return *d <= limit || (lt >= 3 && strncmp(typed, name, lt) == 0) ||
           (ln >= 3 && strncmp(name, typed, ln) == 0);
}

int wf__cli_check_workflow(wf__cli *cli, const char *cmd, const char *workflow, int force)
{
    int rc = wf__cli_connect(cli);
    if (rc != WF_CLI_OK || force || !workflow) return rc;
    char **names = NULL;
    size_t n = 0;
    wf_error err = {0};
    if (wf_list_workflows(cli->client, &names, &n, &err) != WF_OK) return wf__cli_fail(&err);
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], workflow) == 0) {
            wf_list_free(names, n);
            return WF_CLI_OK;
        }
    /* The three closest, nearest first. */
    const char *best[3] = {NULL, NULL, NULL};
    size_t bestd[3] = {0, 0, 0}, d;
    for (size_t i = 0; i < n; i++) {
        if (!close_to(workflow, names[i], &d)) continue;
        for (size_t k = 0; k < 3; k++)
            if (!best[k] || d < bestd[k]) {
                for (size_t j = 2; j > k; j--) {
                    best[j] = best[j - 1];
                    bestd[j] = bestd[j - 1];
                }
                best[k] = names[i];
                bestd[k] = d;
                break;
            }
    }
    char hint[400] = "";
    size_t len = 0;
    for (size_t k = 0; k < 3 && best[k]; k++)
        len += (size_t)snprintf(hint + len, sizeof hint - len, "%s'%s'",
                                k == 0                     ? "; did you mean "
                                : k + 1 < 3 && best[k + 1] ? ", "
                                                           : " or ",
                                best[k]);
    if (!best[0] && n)
        snprintf(hint, sizeof hint, "; `wf workflows` lists the %zu registered", n);
    else if (!best[0])
        snprintf(hint, sizeof hint,
                 "; none is registered yet (a worker registers its workflows when it starts)");
    fprintf(stderr,
            "wf: %s: no worker ever registered workflow '%s'%s%s Give --force to use the name "
            "anyway.\n",
            cmd, workflow, hint, best[0] ? "?" : ".");
    wf_list_free(names, n);
    return WF_CLI_BAD_INPUT;
}
