// The thread pool that kernels' parallel loops run on, installed in place of Halide's
// (halide_set_custom_do_par_for).
//
// Halide's workers go to sleep as soon as a loop has no task left for them. Waking a sleeping
// thread costs a system call, and on a virtual machine an idle virtual CPU that the host has
// handed to someone else: both are paid again at every parallel loop of every call. The workers
// here instead wait for the next loop by spinning for a while (kSpin, as OpenMP runtimes do
// between parallel regions) before they sleep, so that a sequence of calls (a network's layers,
// a benchmark's repetitions) keeps its threads running.
//
// A sleeping worker is woken by the calling thread, and Linux places a woken thread beside its
// waker when it sees no cache the two CPUs share (a virtual machine that describes no caches,
// as on the machines the bench ran on): there it waits behind the caller, which is busy with the
// loop, for milliseconds, until the scheduler moves it. Before waking sleepers, the caller
// therefore lets them run only on the CPUs it is not on.
//
// Both are system calls (24 µs for the affinity and 26 µs for the wake on the Zen 5 EPYC VM),
// and a woken worker may take longer to run than a short loop lasts: a kernel's next loop (res4's
// forward pass pads its input in one, then convolves) would find it still asleep and pay both
// again. So the loop that wakes sleepers counts them off, and the affinity is set only when it
// changes. A call after an idle spell (the bench's untimed runs) took 228 µs longer than one
// with the worker spinning when each loop woke and steered sleepers, and takes 162 µs longer
// since (res4's forward pass, 2 threads, three runs each).
//
// A loop's tasks are split into one contiguous range per thread, the caller's first: each thread
// claims the tasks of its own range one at a time, then those left in the others' ranges. So a
// thread takes the same part of the output at every call of a kernel and finds its lines in its
// own cache, where tasks claimed from one shared counter went to whichever thread came first, the
// other core's cache holding the lines. (On the Zen 5 EPYC VM that the bench ran on, a line
// passed back and forth between its two virtual CPUs takes 445-470 ns a round trip, and a 3 MB
// buffer written by one reads at 37 GB/s on the other against 74-78 on its own, best of 200.)
// Each task computes its own part of the output, so results do not depend on which thread ran
// it, or on how many threads there are. A loop started from inside a task (a nested parallel
// loop), or while another thread's loop has the pool, runs its tasks in the calling thread.
#include "threads.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#if defined(__linux__)
#include <pthread.h>
#include <sched.h>
#endif

#include "HalideRuntime.h"
#include "convgen/convgen.h"

namespace convgen {
namespace {

// How long an idle worker spins for the next loop before it sleeps; not at all when there are
// more threads than cores, where a spinning worker would take a core from one with work to do.
constexpr std::chrono::microseconds kSpin{2000};

// Tells the core a thread is spinning (it yields to the other hyperthread, and saves power).
inline void relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// Waits for `done()` to hold, spinning, then yielding the core: the thread it waits for may need
// it, when there are more threads than cores.
template <typename Condition>
void await(Condition done) {
  constexpr int kSpins = 4096;
  for (int spins = 0; !done(); spins++) {
    if (spins < kSpins) {
      relax();
    } else {
      std::this_thread::yield();
    }
  }
}

// The default thread count, as Halide's: $HL_NUM_THREADS, else one per core.
int default_threads() {
  if (const char* value = std::getenv("HL_NUM_THREADS")) {
    const int threads = std::atoi(value);
    if (threads > 0) return threads;
  }
  return std::max(1, int(std::thread::hardware_concurrency()));
}

// Lets `workers` run on the CPUs the calling thread may run on, except the one it runs on now;
// does nothing when that leaves none, or where threads have no affinity; nor when that set is
// the one applied last (`steered`).
#if defined(__linux__)
using CpuSet = cpu_set_t;
#else
struct CpuSet {};
#endif

void steer_off_caller(std::vector<std::thread>& workers, std::optional<CpuSet>& steered) {
#if defined(__linux__)
  cpu_set_t allowed;
  const int cpu = sched_getcpu();
  if (cpu < 0 || sched_getaffinity(0, sizeof allowed, &allowed) != 0) return;
  CPU_CLR(cpu, &allowed);
  if (CPU_COUNT(&allowed) == 0) return;
  if (steered && CPU_EQUAL(&allowed, &*steered)) return;
  for (std::thread& worker : workers) {
    pthread_setaffinity_np(worker.native_handle(), sizeof allowed, &allowed);
  }
  steered = allowed;
#else
  (void)workers;
  (void)steered;
#endif
}

thread_local bool in_task = false;  // the thread is running a task of some loop

class ThreadPool {
 public:
  static ThreadPool& instance() {
    static ThreadPool pool;
    return pool;
  }

  ~ThreadPool() { stop_workers(); }

  // Restarts the pool with `threads` threads, the caller included (0: the default).
  int resize(int threads) {
    std::lock_guard<std::mutex> owner(owner_);
    stop_workers();
    threads_ = threads > 0 ? threads : default_threads();
    return threads_;
  }

  int run(void* user_context, halide_task_t task, int min, int size, uint8_t* closure) {
    if (size <= 1 || in_task || !owner_.try_lock()) {
      return serial(user_context, task, min, size, closure);
    }
    std::lock_guard<std::mutex> owner(owner_, std::adopt_lock);
    if (threads_ == 0) threads_ = default_threads();
    if (threads_ == 1) return serial(user_context, task, min, size, closure);
    if (workers_.empty()) start_workers();

    loop_ = {task, user_context, closure, min, size};
    for (int t = 0; t < threads_; t++) {
      ranges_[t].next.store(int(int64_t(size) * t / threads_), std::memory_order_relaxed);
      ranges_[t].end = int(int64_t(size) * (t + 1) / threads_);
    }
    done_.store(0, std::memory_order_relaxed);
    error_.store(0, std::memory_order_relaxed);
    bool asleep = false;
    {
      std::lock_guard<std::mutex> lock(mutex_);  // no worker between its check and its sleep
      ticket_.store((generation(ticket_.load()) + 1) << kGenerationShift,
                    std::memory_order_release);
      asleep = sleeping_ > 0;
      if (asleep) {
        sleeping_ = 0;
        wakes_++;
      }
    }
    if (asleep) {
      if (!oversubscribed_) steer_off_caller(workers_, steered_);
      wake_.notify_all();
    }
    drain(0);
    // Every task is done once the count says so; then no worker may join, and the loop returns
    // once those that did have left it (they read its fields).
    await([&] { return done_.load(std::memory_order_acquire) == size; });
    ticket_.fetch_or(kClosed, std::memory_order_acq_rel);
    await([&] { return (ticket_.load(std::memory_order_acquire) & kJoined) == 0; });
    return error_.load(std::memory_order_relaxed);
  }

 private:
  // ticket_: the loop's generation in the high bits, whether it is closed to joining, and how
  // many workers are in it.
  static constexpr int kGenerationShift = 32;
  static constexpr uint64_t kClosed = uint64_t(1) << 31;
  static constexpr uint64_t kJoined = kClosed - 1;
  static uint64_t generation(uint64_t ticket) { return ticket >> kGenerationShift; }

  struct Loop {
    halide_task_t task = nullptr;
    void* user_context = nullptr;
    uint8_t* closure = nullptr;
    int min = 0, size = 0;
  };

  static int serial(void* user_context, halide_task_t task, int min, int size, uint8_t* closure) {
    const bool nested = in_task;
    in_task = true;
    int error = 0;
    for (int i = min; i < min + size && error == 0; i++) error = task(user_context, i, closure);
    in_task = nested;
    return error;
  }

  // Claims and runs the tasks of thread `slot`'s range, then of the others', until none is left.
  // After a task fails the rest are claimed but not run, and the loop returns the first error.
  void drain(int slot) {
    in_task = true;
    for (int k = 0; k < threads_; k++) {
      Range& range = ranges_[(slot + k) % threads_];
      for (;;) {
        const int i = range.next.fetch_add(1, std::memory_order_relaxed);
        if (i >= range.end) break;
        if (error_.load(std::memory_order_relaxed) == 0) {
          const int error = loop_.task(loop_.user_context, loop_.min + i, loop_.closure);
          int none = 0;
          if (error != 0) error_.compare_exchange_strong(none, error, std::memory_order_relaxed);
        }
        done_.fetch_add(1, std::memory_order_release);
      }
    }
    in_task = false;
  }

  void work(int slot, std::chrono::microseconds spin) {
    uint64_t seen = generation(ticket_.load(std::memory_order_acquire));
    for (;;) {
      uint64_t ticket = ticket_.load(std::memory_order_acquire);
      const auto deadline = std::chrono::steady_clock::now() + spin;
      for (int spins = 0; generation(ticket) == seen; spins++) {
        if (spins % 1024 == 0 && std::chrono::steady_clock::now() > deadline) {
          std::unique_lock<std::mutex> lock(mutex_);
          const uint64_t wakes = wakes_;
          sleeping_++;
          wake_.wait(lock, [&] { return stop_ || generation(ticket_.load()) != seen; });
          if (wakes_ == wakes) sleeping_--;  // not counted off by a waker (a loop began first)
          if (stop_) return;
        }
        relax();
        ticket = ticket_.load(std::memory_order_acquire);
      }
      seen = generation(ticket);
      // Join the loop unless it has closed (its tasks all done) or a newer one has begun.
      while (!(ticket & kClosed) && generation(ticket) == seen) {
        if (ticket_.compare_exchange_weak(ticket, ticket + 1, std::memory_order_acq_rel)) {
          drain(slot);
          ticket_.fetch_sub(1, std::memory_order_release);
          break;
        }
      }
    }
  }

  void start_workers() {
    stop_ = false;
    oversubscribed_ = threads_ > int(std::thread::hardware_concurrency());
    const std::chrono::microseconds spin = oversubscribed_ ? std::chrono::microseconds(0) : kSpin;
    ranges_ = std::vector<Range>(size_t(threads_));
    steered_.reset();
    for (int i = 1; i < threads_; i++) workers_.emplace_back([this, i, spin] { work(i, spin); });
  }

  void stop_workers() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    for (std::thread& worker : workers_) worker.join();
    workers_.clear();
  }

  std::mutex owner_;  // held by the thread whose loop has the pool
  int threads_ = 0;   // 0 until the first loop or resize()
  std::vector<std::thread> workers_;
  Loop loop_;
  // Per thread, the tasks of its range not yet claimed: [next, end), each on a cache line of its
  // own.
  struct alignas(64) Range {
    std::atomic<int> next{0};
    int end = 0;
  };
  std::vector<Range> ranges_;
  std::atomic<int> done_{0}, error_{0};
  std::atomic<uint64_t> ticket_{0};
  std::mutex mutex_;  // with wake_: sleeping workers
  std::condition_variable wake_;
  int sleeping_ = 0;    // workers waiting on wake_ that no loop has woken yet
  uint64_t wakes_ = 0;  // how many times a loop has woken them
  bool stop_ = false;
  bool oversubscribed_ = false;    // more threads than cores: workers do not spin
  std::optional<CpuSet> steered_;  // the CPUs the workers were last let run on
};

int do_par_for(void* user_context, halide_task_t task, int min, int size, uint8_t* closure) {
  return ThreadPool::instance().run(user_context, task, min, size, closure);
}

}  // namespace

void install_thread_pool() {
  static const bool installed = (halide_set_custom_do_par_for(do_par_for), true);
  (void)installed;
}

int set_num_threads(int threads) {
  install_thread_pool();
  return ThreadPool::instance().resize(threads);
}

}  // namespace convgen
