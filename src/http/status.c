/* Errors to HTTP statuses; see status.h. */
#include "http/status.h"

int http_status(ic_err_t e)
{
    switch (e) {
    case IC_OK: return 200;
    case IC_EIMAGE_CORRUPT:
    case IC_EIMAGE_SMALL:
    case IC_EPREPROCESS:
    case IC_EBODY_EMPTY:
    case IC_EBODY_MALFORMED:
    case IC_EPARAM: return 400;
    case IC_ENO_MODEL: return 404;
    case IC_EIMAGE_LARGE:
    case IC_EBODY_TOO_LARGE:
    case IC_ETOO_MANY_IMAGES: return 413;
    case IC_EIMAGE_FORMAT:
    case IC_EBODY_TYPE: return 415;
    case IC_ECANCELLED: return HTTP_CLIENT_CLOSED;
    /* Out of memory passes, like a full queue or a model still loading:
     * the client may retry. */
    case IC_ENOMEM:
    case IC_ENOT_LOADED:
    case IC_EQUEUE_FULL:
    case IC_ESHUTDOWN: return 503;
    case IC_EDEADLINE: return 504;
    case IC_ESYSTEM:
    case IC_ECONFIG:
    case IC_EMODEL:
    case IC_EINFER:
    case IC_ERROR_COUNT: break;
    }
    return 500;
}
