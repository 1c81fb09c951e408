/* wf/api.h - how the public headers open and close their declarations: C linkage for C++, and
 * default visibility, because libwf and libwf-worker are built with -fvisibility=hidden and
 * export exactly what these headers declare (CONTRIBUTING.md, "ABI"). Included by each header;
 * a user never needs it. */
#ifndef WF_API_H
#define WF_API_H

#if defined(__GNUC__)
#define WF_VISIBILITY_DEFAULT_BEGIN _Pragma("GCC visibility push(default)")
#define WF_VISIBILITY_DEFAULT_END   _Pragma("GCC visibility pop")
#else
#define WF_VISIBILITY_DEFAULT_BEGIN
#define WF_VISIBILITY_DEFAULT_END
#endif

#ifdef __cplusplus
#define WF_BEGIN_DECLS                                                                             \
    extern "C" {                                                                                   \
    WF_VISIBILITY_DEFAULT_BEGIN
#define WF_END_DECLS                                                                               \
    WF_VISIBILITY_DEFAULT_END                                                                      \
    }
#else
#define WF_BEGIN_DECLS WF_VISIBILITY_DEFAULT_BEGIN
#define WF_END_DECLS   WF_VISIBILITY_DEFAULT_END
#endif

#endif
