// SerialExecutor: one thread that runs jobs in the order they were submitted, for a back end
// whose calls must not overlap (MPI initialised with MPI_THREAD_SERIALIZED): the training
// thread submits an all-reduce and goes on with backward while this thread communicates.
// A job's completion is waited for with a deadline, so a collective that never completes
// (another rank died) turns into an error instead of a hang.
#pragma once

#include <condition_variable>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace cxr::dist {

class SerialExecutor {
 public:
  struct Job {
    std::function<void()> run;
    std::string what;  // "all_reduce (mpi, 4.2 MB)", for messages
    bool done = false;
    std::exception_ptr error;
    double seconds = 0;  // time the job ran, from its start on the executor's thread
  };

  SerialExecutor();
  ~SerialExecutor();  // runs the queued jobs, then joins
  SerialExecutor(const SerialExecutor&) = delete;
  SerialExecutor& operator=(const SerialExecutor&) = delete;

  std::shared_ptr<Job> submit(std::function<void()> run, std::string what);
  // Waits until `job` is done; rethrows its error. false: not done within timeout_seconds.
  bool wait(const std::shared_ptr<Job>& job, double timeout_seconds);

 private:
  void loop();
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Job>> queue_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace cxr::dist
