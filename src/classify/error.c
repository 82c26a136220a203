/* The error table's text; see error.h. */
#include "classify/error.h"

static const char *const texts[] = {
#define IC_ERROR_TEXT(code, text) [code] = text,
    IC_ERRORS(IC_ERROR_TEXT)
#undef IC_ERROR_TEXT
};

static const char *const names[] = {
#define IC_ERROR_NAME(code, text) [code] = #code,
    IC_ERRORS(IC_ERROR_NAME)
#undef IC_ERROR_NAME
};

_Static_assert(sizeof texts / sizeof texts[0] == IC_ERROR_COUNT,
               "every error code has a text");

const char *ic_strerror(ic_err_t code)
{
    return (unsigned)code < IC_ERROR_COUNT ? texts[code] : "unknown error";
}

const char *ic_errname(ic_err_t code)
{
    return (unsigned)code < IC_ERROR_COUNT ? names[code] : "IC_E?";
}
