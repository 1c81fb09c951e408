/* fuzz.h - shared by the libFuzzer targets of fuzz/: a NUL-terminated copy of the input for the
 * parsers that take C strings, and an abort that names the broken invariant. Built and run by
 * fuzz/run with clang -fsanitize=fuzzer,address,undefined. */
#ifndef WF_FUZZ_H
#define WF_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wf_internal.h"

/* A malloc'd copy of data with a NUL after it (embedded NULs stay: the parser sees a prefix). */
static inline char *fuzz_cstr(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s) abort();
    memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

#define FUZZ_CHECK(cond, ...)                                                                      \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "invariant broken: %s: ", #cond);                                      \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr, "\n");                                                                 \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#endif
