#include "memory_budget.h"

#include <unistd.h>

#include <cstdio>

#include "convgen/error.h"

namespace convgen::tools {
namespace {

std::string gibibytes(double bytes) {
  char text[32];
  std::snprintf(text, sizeof text, "%.2f GiB", bytes / double(uint64_t{1} << 30));
  return text;
}

}  // namespace

MemoryBudget MemoryBudget::physical_memory() {
  const long pages = ::sysconf(_SC_PHYS_PAGES);
  const long page_size = ::sysconf(_SC_PAGESIZE);
  return MemoryBudget(pages > 0 && page_size > 0 ? uint64_t(pages) * uint64_t(page_size) : 0);
}

void MemoryBudget::reserve(int64_t elements, const std::string& argument) {
  if (uint64_t(elements) > (total_ - reserved_) / sizeof(float)) {
    const double bytes = double(elements) * sizeof(float);
    throw Error(ErrorId::too_large, argument,
                std::to_string(elements) + " float32 elements (" + gibibytes(bytes) +
                    ") bring the tensors of the run to " + gibibytes(double(reserved_) + bytes) +
                    ", more than this machine's " + gibibytes(double(total_)) + " of memory");
  }
  reserved_ += uint64_t(elements) * sizeof(float);
}

}  // namespace convgen::tools
