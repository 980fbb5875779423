#include "convgen/error.h"

namespace convgen {

const char* to_string(ErrorId id) {
  switch (id) {
    case ErrorId::invalid_argument: return "invalid_argument";
    case ErrorId::invalid_stride: return "invalid_stride";
    case ErrorId::invalid_dilation: return "invalid_dilation";
    case ErrorId::invalid_padding: return "invalid_padding";
    case ErrorId::shape_mismatch: return "shape_mismatch";
    case ErrorId::empty_output: return "empty_output";
    case ErrorId::too_large: return "too_large";
    case ErrorId::io_error: return "io_error";
    case ErrorId::bad_file: return "bad_file";
    case ErrorId::unsupported: return "unsupported";
    case ErrorId::kernel_failed: return "kernel_failed";
    case ErrorId::generation_failed: return "generation_failed";
  }
  return "unknown";
}

// Every message reads "<argument>: <reason> [<id>]", so that people see what to fix first and
// programs can match the id.
Error::Error(ErrorId id, std::string argument, const std::string& reason)
    : std::runtime_error(argument + ": " + reason + " [" + to_string(id) + "]"),
      id_(id),
      argument_(std::move(argument)),
      reason_(reason) {}

}  // namespace convgen
