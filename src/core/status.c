/* Status names, version, error message helpers. */
#include "core/internal.h"

#include <stdio.h>
#include <string.h>

const char *ms6_status_string(ms6_status status) {
    switch (status) {
    case MS6_STATUS_OK: return "ok";
    case MS6_STATUS_INVALID_ARGUMENT: return "invalid argument";
    case MS6_STATUS_OUT_OF_MEMORY: return "out of memory";
    case MS6_STATUS_IO_ERROR: return "I/O error";
    case MS6_STATUS_FORMAT_ERROR: return "format error";
    case MS6_STATUS_UNSUPPORTED: return "unsupported";
    case MS6_STATUS_OUT_OF_RANGE: return "out of range";
    case MS6_STATUS_DEVICE_ERROR: return "device error";
    case MS6_STATUS_BUFFER_TOO_SMALL: return "buffer too small";
    }
    return "unknown status";
}

const char *ms6_version(void) { return MS6_VERSION_STRING; }

ms6_status ms6_vfmt_error(char *buf, ms6_status status, const char *fmt, va_list ap) {
    if (buf) vsnprintf(buf, MS6_ERRMSG_SIZE, fmt, ap);
    return status;
}

ms6_status ms6_fmt_error(char *buf, ms6_status status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    ms6_vfmt_error(buf, status, fmt, ap);
    va_end(ap);
    return status;
}

void ms6_error_set(ms6_error *err, ms6_status status, const char *msg) {
    if (!err) return;
    err->status = status;
    snprintf(err->message, sizeof err->message, "%s", msg ? msg : ms6_status_string(status));
}
