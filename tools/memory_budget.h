// The memory a command may give its tensors, so that a run too large for this machine fails with a
// clear error before it allocates anything, rather than being killed halfway (Linux grants
// allocations beyond physical memory and kills the process that then touches them).
#pragma once

#include <cstdint>
#include <string>

namespace convgen::tools {

class MemoryBudget {
 public:
  explicit MemoryBudget(uint64_t bytes) : total_(bytes) {}
  // This machine's physical memory (sysconf: physical pages times the page size).
  static MemoryBudget physical_memory();

  // Takes the bytes of `elements` float32 values for the tensor `argument` names (e.g. "--output"),
  // or throws ErrorId::too_large naming it when they exceed what is left.
  void reserve(int64_t elements, const std::string& argument);

 private:
  uint64_t total_;
  uint64_t reserved_ = 0;
};

}  // namespace convgen::tools
