/* Error helpers for the engine: one message, naming the node and its op. */
#ifndef NN_ERROR_H
#define NN_ERROR_H

#include "imgclass/nn.h"

struct nn_node;

/* Formats the message into err (if not NULL) and returns -code.
 * The message reads "<fmt...>". */
int nn_fail(nn_error_t *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Same, prefixed with "node 'NAME' (OP): ". */
int nn_node_fail(nn_error_t *err, const struct nn_node *node, int code,
                 const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#endif
