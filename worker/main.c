/* main.c - the `wf-worker` program: everything it does is wf_worker_main() (worker/program.c),
 * in libwf-worker, so this binary links only the library's public ABI. */
#include <wf/worker.h>

int main(int argc, char **argv)
{
    return wf_worker_main(argc, argv);
}
