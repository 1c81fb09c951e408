/* error.c - the error map (one X-macro in wf/error.h) and wf_error filling. */
#include <stdarg.h>
#include <stdio.h>

#include "wf/error.h"

const char *wf_strerror(int code)
{
    switch (code) {
    case WF_OK:
        return "success";
#define WF_X_(name, value, msg)                                                                    \
    case value:                                                                                    \
        return msg;
        WF_ERRNO_MAP(WF_X_)
#undef WF_X_
    default:
        return "unknown error";
    }
}

const char *wf_errname(int code)
{
    switch (code) {
    case WF_OK:
        return "WF_OK";
#define WF_X_(name, value, msg)                                                                    \
    case value:                                                                                    \
        return "WF_ERR_" #name;
        WF_ERRNO_MAP(WF_X_)
#undef WF_X_
    default:
        return "WF_ERR_UNKNOWN";
    }
}

int wf_error_set(wf_error *err, int code, const char *fmt, ...)
{
    if (!err) return code;
    err->code = code;
    if (!fmt) {
        snprintf(err->message, sizeof err->message, "%s", wf_strerror(code));
        return code;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return code;
}
