// Errors raised by every part of convgen.
//
// Each error carries a stable id (for programs) and the name of the offending argument (for people);
// the message always starts with that argument's name. Messages are built in one place, error.cpp.
#pragma once

#include <stdexcept>
#include <string>

namespace convgen {

enum class ErrorId {
  invalid_argument,  // a malformed value: not a number, wrong count of entries, unknown name
  invalid_stride,    // a stride < 1, or a batch/channel stride != 1
  invalid_dilation,  // a dilation < 1, or a batch/channel dilation != 1
  invalid_padding,   // a negative pad, a batch/channel pad, pads given without EXPLICIT
  shape_mismatch,    // tensors that do not fit together
  empty_output,      // the geometry gives an output with no pixels
  too_large,         // an element count or byte size that overflows what can be indexed or held
  io_error,          // a file that cannot be opened, read or written
  bad_file,          // a file whose contents are not a valid .npy / JSON
  unsupported,       // a valid request this build cannot serve (dtype, target, ...)
  kernel_failed,     // a compiled kernel returned an error
  generation_failed, // the Halide generator could not compile a kernel
};

// The stable spelling of an id, e.g. "shape_mismatch".
const char* to_string(ErrorId id);

class Error : public std::runtime_error {
 public:
  Error(ErrorId id, std::string argument, const std::string& reason);

  ErrorId id() const { return id_; }
  // The argument the error is about, as the user wrote it (e.g. "--strides", "filter").
  const std::string& argument() const { return argument_; }
  // Why, without the argument and the id (e.g. "must be >= 1, got 0").
  const std::string& reason() const { return reason_; }

 private:
  ErrorId id_;
  std::string argument_;
  std::string reason_;
};

}  // namespace convgen
