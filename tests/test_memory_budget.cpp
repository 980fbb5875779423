// The memory budget of `convgen run`: tensors are reserved in turn, and the first that does not fit
// in what is left is refused, naming it.
#include <catch2/catch.hpp>
#include <cstdint>

#include "geometry_builder.h"
#include "memory_budget.h"

namespace convgen::tools {
namespace {

using testing::check_error;

TEST_CASE("memory budget: tensors fit exactly, one element more is refused", "[unit]") {
  MemoryBudget budget(4000);  // bytes: 1000 float32 elements
  budget.reserve(600, "--input");
  budget.reserve(0, "--bias");
  budget.reserve(400, "--output");
  check_error([&] { budget.reserve(1, "--filter"); }, ErrorId::too_large, "--filter");

  MemoryBudget small(4000);
  small.reserve(999, "--input");
  check_error([&] { small.reserve(2, "--output"); }, ErrorId::too_large, "--output");
  small.reserve(1, "--output");  // a refused tensor takes nothing
}

TEST_CASE("memory budget: the refusal says how much the run would need", "[unit]") {
  MemoryBudget budget(uint64_t(6) << 30);
  budget.reserve(int64_t(1) << 30, "--input");  // 4 GiB
  try {
    budget.reserve(int64_t(3) << 28, "--output");  // 3 GiB
    FAIL_CHECK("not refused");
  } catch (const Error& e) {
    CHECK(e.reason() ==
          "805306368 float32 elements (3.00 GiB) bring the tensors of the run to 7.00 GiB, more "
          "than this machine's 6.00 GiB of memory");
  }
  // So many elements that their bytes overflow 64 bits.
  check_error([] { MemoryBudget(~uint64_t{0}).reserve(INT64_MAX, "--output"); },
              ErrorId::too_large, "--output");
}

TEST_CASE("memory budget: this machine's physical memory holds a small run", "[unit]") {
  MemoryBudget budget = MemoryBudget::physical_memory();
  budget.reserve(1 << 20, "--input");
  check_error([&] { budget.reserve(INT64_MAX / 4, "--output"); }, ErrorId::too_large, "--output");
}

}  // namespace
}  // namespace convgen::tools
