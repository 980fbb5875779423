// convgen's thread pool, which runs the kernels' parallel loops (halide_do_par_for once
// set_num_threads() has installed it): every task of a loop runs exactly once, on several threads,
// nested loops and a failing task included, and loop after loop as workers spin and sleep.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#if defined(__linux__)
#include <sched.h>
#endif

#include "HalideRuntime.h"
#include "convgen/convgen.h"

namespace convgen::testing {
namespace {

// What the tasks of a loop record.
struct Record {
  std::vector<std::atomic<int>> runs;  // per task, how many times it ran
  std::mutex mutex;
  std::set<std::thread::id> threads;  // the threads that ran any
  int fail_at = -1;                   // the task that returns an error, if any
  int nested = 0;                     // per task, the size of a loop it runs inside itself

  explicit Record(int tasks) : runs(size_t(tasks)) {}
};

bool each_ran_once(const Record& record) {
  for (const auto& runs : record.runs) {
    if (runs != 1) return false;
  }
  return true;
}

int count_task(void* /*user_context*/, int task, uint8_t* closure) {
  auto& record = *reinterpret_cast<Record*>(closure);
  record.runs[size_t(task)]++;
  std::lock_guard<std::mutex> lock(record.mutex);
  record.threads.insert(std::this_thread::get_id());
  return 0;
}

int task(void* user_context, int index, uint8_t* closure) {
  auto& record = *reinterpret_cast<Record*>(closure);
  record.runs[size_t(index)]++;
  {
    std::lock_guard<std::mutex> lock(record.mutex);
    record.threads.insert(std::this_thread::get_id());
  }
  std::this_thread::sleep_for(std::chrono::microseconds(200));  // time for the others to join
  if (record.nested > 0) {
    Record inner(record.nested);
    const int error = halide_do_par_for(user_context, count_task, 0, record.nested,
                                        reinterpret_cast<uint8_t*>(&inner));
    const std::set<std::thread::id> this_thread = {std::this_thread::get_id()};
    if (error != 0 || inner.threads != this_thread || !each_ran_once(inner)) return 1;
  }
  return index == record.fail_at ? -7 : 0;
}

int run_loop(Record& record, int min, int size) {
  return halide_do_par_for(nullptr, task, min, size, reinterpret_cast<uint8_t*>(&record));
}

// Whether a loop of `size` tasks succeeds, each task run once.
bool runs_each_once(int size) {
  Record record(size);
  return run_loop(record, 0, size) == 0 && each_ran_once(record);
}

// Two tasks that each wait (up to a second) until both have started, recording their CPUs: both
// start at once only if the worker runs beside the caller, not queued behind it on its CPU.
struct Meeting {
  std::atomic<int> arrived{0};
  int cpus[2] = {-1, -1};
};

int meet(void* /*user_context*/, int index, uint8_t* closure) {
  auto& meeting = *reinterpret_cast<Meeting*>(closure);
#if defined(__linux__)
  meeting.cpus[index] = sched_getcpu();
#endif
  meeting.arrived++;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  while (meeting.arrived < 2 && std::chrono::steady_clock::now() < deadline) {
  }
  return 0;
}

// Per task of a loop, the thread that ran it and when it started among the loop's tasks.
struct Claims {
  explicit Claims(int tasks) : owners(size_t(tasks)), order(size_t(tasks)) {}

  std::vector<std::thread::id> owners;
  std::vector<int> order;
  std::atomic<int> started{0};
};

// Records its task's claim; each task takes about 100 µs.
int record_claim(void* /*user_context*/, int index, uint8_t* closure) {
  auto& claims = *reinterpret_cast<Claims*>(closure);
  claims.owners[size_t(index)] = std::this_thread::get_id();
  claims.order[size_t(index)] = claims.started++;
  const auto end = std::chrono::steady_clock::now() + std::chrono::microseconds(100);
  while (std::chrono::steady_clock::now() < end) {
  }
  return 0;
}

// Whether each thread ran the tasks it took of its own half before any of the other half: the
// caller owns the first half, a worker the second. Per thread (0: the caller, 1: the worker), the
// last start of a task of its own half and the first of the other's.
bool own_half_first(const Claims& claims) {
  const int tasks = int(claims.owners.size());
  int last_own[2] = {-1, -1};
  int first_other[2] = {tasks, tasks};
  for (int i = 0; i < tasks; i++) {
    const int thread = claims.owners[size_t(i)] == std::this_thread::get_id() ? 0 : 1;
    const int order = claims.order[size_t(i)];
    if ((i >= tasks / 2) == (thread == 1)) {
      last_own[thread] = std::max(last_own[thread], order);
    } else {
      first_other[thread] = std::min(first_other[thread], order);
    }
  }
  return last_own[0] < first_other[0] && last_own[1] < first_other[1];
}

}  // namespace

TEST_CASE("thread pool: every task of a loop runs once, on several threads", "[unit][threads]") {
  REQUIRE(set_num_threads(3) == 3);
  for (int size : {1, 2, 7, 64}) {
    Record record(size + 5);
    REQUIRE(run_loop(record, 5, size) == 0);
    for (int i = 0; i < 5; i++) CHECK(record.runs[size_t(i)] == 0);
    for (int i = 5; i < size + 5; i++) CHECK(record.runs[size_t(i)] == 1);
  }
  // The workers join a loop of 64 tasks of 200 µs, unless other processes hold the CPUs for all
  // of it: in one of up to 10 loops.
  bool shared = false;
  for (int loop = 0; loop < 10 && !shared; loop++) {
    Record record(64);
    REQUIRE(run_loop(record, 0, 64) == 0);
    shared = record.threads.size() > 1;
  }
  CHECK(shared);
  // Loop after loop: a worker that spins, one that went to sleep, and one that is woken.
  for (int pause_ms : {0, 5, 0}) {
    std::this_thread::sleep_for(std::chrono::milliseconds(pause_ms));
    CHECK(runs_each_once(16));
  }
  set_num_threads(0);
}

// Linux wakes a sleeping worker on its waker's CPU when it sees no cache they share (virtual
// machines that describe none), where it waited behind the busy caller for milliseconds. A loop
// wakes the sleepers once: every other time, a loop of two short tasks first, which the caller
// may finish before the worker runs; the next loop then finds it woken, not asleep, and must
// still have it.
TEST_CASE("thread pool: a worker woken from sleep runs on another CPU than the caller",
          "[unit][threads]") {
#if defined(__linux__)
  if (std::thread::hardware_concurrency() < 2) return;
  set_num_threads(2);
  CHECK(runs_each_once(4));  // the worker starts
  for (int repeat = 0; repeat < 6; repeat++) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));  // past its spin: asleep
    if (repeat % 2) {
      Record record(2);
      REQUIRE(halide_do_par_for(nullptr, count_task, 0, 2, reinterpret_cast<uint8_t*>(&record)) ==
              0);
      CHECK(each_ran_once(record));
    }
    Meeting meeting;
    REQUIRE(halide_do_par_for(nullptr, meet, 0, 2, reinterpret_cast<uint8_t*>(&meeting)) == 0);
    CHECK(meeting.arrived == 2);
    CHECK(meeting.cpus[0] != meeting.cpus[1]);
  }
  set_num_threads(0);
#endif
}

// So that a thread takes the same part of a kernel's output at every call, and finds it in its
// own cache. Which thread runs which task depends on when the worker wakes: every loop must keep
// the order, and some must show the worker starting its half (its CPU may be busy with another
// process for many of them, since ctest runs two tests at once). Were the tasks claimed from one
// counter, an awake worker would take some of the first half and then some of the second.
TEST_CASE("thread pool: each thread runs the tasks of its own half of a loop first",
          "[unit][threads]") {
  if (std::thread::hardware_concurrency() < 2) return;
  set_num_threads(2);
  constexpr int kTasks = 32;
  int worker_started_its_half = 0;
  for (int call = 0; call < 100 && (call < 20 || worker_started_its_half < 4); call++) {
    Claims claims(kTasks);
    REQUIRE(halide_do_par_for(nullptr, record_claim, 0, kTasks,
                              reinterpret_cast<uint8_t*>(&claims)) == 0);
    REQUIRE(claims.started == kTasks);
    CHECK(own_half_first(claims));
    worker_started_its_half += claims.owners[kTasks / 2] != std::this_thread::get_id();
  }
  CHECK(worker_started_its_half >= 4);
  set_num_threads(0);
}

TEST_CASE("thread pool: a loop inside a task runs its tasks in that task's thread",
          "[unit][threads]") {
  set_num_threads(2);
  Record record(8);
  record.nested = 5;
  CHECK(run_loop(record, 0, 8) == 0);
  CHECK(each_ran_once(record));
  set_num_threads(0);
}

TEST_CASE("thread pool: a failing task's error is the loop's, and every task is accounted for",
          "[unit][threads]") {
  for (int threads : {1, 2}) {
    set_num_threads(threads);
    Record record(32);
    record.fail_at = 3;
    CHECK(run_loop(record, 0, 32) == -7);
    for (const auto& runs : record.runs) CHECK(runs <= 1);
    CHECK(record.runs[3] == 1);
    CHECK(runs_each_once(32));  // the pool serves the next loop as usual
  }
  set_num_threads(0);
}

TEST_CASE("thread pool: loops started from several threads at once each run every task once",
          "[unit][threads]") {
  set_num_threads(2);
  constexpr int kThreads = 4;
  std::vector<std::thread> callers;
  std::vector<int> errors(kThreads, -1);
  for (int t = 0; t < kThreads; t++) {
    callers.emplace_back([&, t] {
      bool ok = true;
      for (int repeat = 0; repeat < 3 && ok; repeat++) ok = runs_each_once(24);
      errors[size_t(t)] = ok ? 0 : 1;
    });
  }
  for (std::thread& caller : callers) caller.join();
  for (int error : errors) CHECK(error == 0);
  set_num_threads(0);
}

}  // namespace convgen::testing
