// Scratch memory for the buffers a kernel computes per call (zero-padded inputs, packed filters,
// accumulator blocks), installed in place of Halide's allocator (halide_set_custom_malloc).
//
// Halide allocates these with malloc at every call and frees them before returning. glibc serves
// a large block with mmap, or from the top of its heap, which it gives back to the system when it
// is freed (past M_TRIM_THRESHOLD): the next call then faults every page of the block in again.
// An application that calls a kernel in a loop paid that on each call: res4's 3x3 forward pass
// took 2.21 ms instead of 1.24 on one thread of the Zen 5 EPYC, a quarter of it in the kernel's
// page-fault handler. (A process whose earlier allocations had raised glibc's thresholds, as the
// bench's have, did not, which is how it went unseen.) Large freed blocks are therefore kept,
// up to kCacheLimit bytes, and handed to the next request they fit.
#include "scratch.h"

#include <cstdint>
#include <cstdlib>
#include <map>
#include <mutex>

#include "HalideRuntime.h"
#include "convgen/convgen.h"

namespace convgen {
namespace {

// Halide's contract: aligned for any vector load, and readable 8 bytes before and after. Each
// block has a line of slack on either side; the one in front holds the block's capacity.
constexpr size_t kAlignment = 64;
constexpr size_t kSlack = 64;
constexpr size_t kCachedMin = size_t(64) << 10;  // smaller blocks come from malloc's own bins
constexpr size_t kPage = 4096;
constexpr size_t kCacheLimit = size_t(256) << 20;

size_t& capacity_of(void* ptr) { return *reinterpret_cast<size_t*>(static_cast<char*>(ptr) - kSlack); }

void* new_block(size_t capacity) {
  char* base = static_cast<char*>(std::aligned_alloc(kAlignment, kSlack + capacity + kSlack));
  if (!base) return nullptr;
  void* ptr = base + kSlack;
  capacity_of(ptr) = capacity;
  return ptr;
}

void delete_block(void* ptr) { std::free(static_cast<char*>(ptr) - kSlack); }

class ScratchCache {
 public:
  static ScratchCache& instance() {
    static ScratchCache* cache = new ScratchCache;  // never destroyed: kernels may run at exit
    return *cache;
  }

  void* allocate(size_t bytes) {
    if (bytes < kCachedMin) return new_block((bytes + kAlignment - 1) / kAlignment * kAlignment);
    const size_t capacity = (bytes + kPage - 1) / kPage * kPage;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      // The smallest kept block that fits, unless it would waste more than a quarter of itself.
      const auto fit = free_.lower_bound(capacity);
      if (fit != free_.end() && fit->first - capacity <= fit->first / 4) {
        void* ptr = fit->second;
        cached_ -= fit->first;
        free_.erase(fit);
        return ptr;
      }
    }
    return new_block(capacity);
  }

  void release(void* ptr) {
    const size_t capacity = capacity_of(ptr);
    if (capacity >= kCachedMin) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (cached_ + capacity <= kCacheLimit) {
        free_.emplace(capacity, ptr);
        cached_ += capacity;
        return;
      }
    }
    delete_block(ptr);
  }

  size_t cached() {
    std::lock_guard<std::mutex> lock(mutex_);
    return cached_;
  }

  void clear() {
    std::multimap<size_t, void*> blocks;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      blocks.swap(free_);
      cached_ = 0;
    }
    for (const auto& [capacity, ptr] : blocks) delete_block(ptr);
  }

 private:
  std::mutex mutex_;
  std::multimap<size_t, void*> free_;  // capacity -> block
  size_t cached_ = 0;                  // bytes in free_
};

void* scratch_malloc(void* /*user_context*/, size_t bytes) {
  return ScratchCache::instance().allocate(bytes);
}

void scratch_free(void* /*user_context*/, void* ptr) {
  if (ptr) ScratchCache::instance().release(ptr);
}

}  // namespace

void install_scratch_cache() {
#ifdef CONVGEN_SANITIZE
  constexpr bool kKeep = false;  // kept blocks would hide a kernel's use after free from ASan
#else
  constexpr bool kKeep = true;
#endif
  if (!kKeep) return;
  static const bool installed =
      (halide_set_custom_malloc(scratch_malloc), halide_set_custom_free(scratch_free), true);
  (void)installed;
}

namespace {

// Before main(), so that no block Halide's own allocator made is given back to this one.
const bool installed_at_start = (install_scratch_cache(), true);

}  // namespace

size_t cached_scratch_bytes() { return ScratchCache::instance().cached(); }

void release_scratch_memory() { ScratchCache::instance().clear(); }

}  // namespace convgen
