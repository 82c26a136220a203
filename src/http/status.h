/* The one place where the errors of the layers below (classify/error.h)
 * become HTTP statuses. */
#ifndef HTTP_STATUS_H
#define HTTP_STATUS_H

#include "classify/error.h"

/* 499 is nginx's "client closed request", for a client that left. */
#define HTTP_CLIENT_CLOSED 499

/* The status a request failing with e is answered with (200 for IC_OK). */
int http_status(ic_err_t e);

#endif
