/* Error helpers for the engine: a code and one message. (nn_node_fail,
 * which names the node and its op, is graph.h's.) */
#ifndef NN_ERROR_H
#define NN_ERROR_H

#include "imgclass/nn.h"

/* Formats the message into err (if not NULL) and returns -code.
 * The message reads "<fmt...>". */
int nn_fail(nn_error_t *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
