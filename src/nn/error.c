/* Error messages and the code->text table. */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>

const char *nn_strerror(int code)
{
    switch (code < 0 ? -code : code) {
    case 0: return "success";
#define NN_ERROR_TEXT(name, value, text) case value: return text;
        NN_ERRORS(NN_ERROR_TEXT)
#undef NN_ERROR_TEXT
    default: return "unknown error";
    }
}

int nn_fail(nn_error_t *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return -code;
}
