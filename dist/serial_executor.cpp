// The communication thread (see serial_executor.h).
#include "dist/serial_executor.h"

#include <chrono>

namespace cxr::dist {

SerialExecutor::SerialExecutor() : thread_([this] { loop(); }) {}

SerialExecutor::~SerialExecutor() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

std::shared_ptr<SerialExecutor::Job> SerialExecutor::submit(std::function<void()> run, std::string what) {
  auto job = std::make_shared<Job>();
  job->run = std::move(run);
  job->what = std::move(what);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    queue_.push_back(job);
  }
  cv_.notify_all();
  return job;
}

bool SerialExecutor::wait(const std::shared_ptr<Job>& job, double timeout_seconds) {
  std::unique_lock<std::mutex> lock(mutex_);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_seconds);
  if (!cv_.wait_until(lock, deadline, [&] { return job->done; })) return false;
  if (job->error) std::rethrow_exception(job->error);
  return true;
}

void SerialExecutor::loop() {
  for (;;) {
    std::shared_ptr<Job> job;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, nothing left
      job = queue_.front();
      queue_.pop_front();
    }
    const auto t0 = std::chrono::steady_clock::now();
    std::exception_ptr error;
    try {
      job->run();
    } catch (...) {
      error = std::current_exception();
    }
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    {
      std::lock_guard<std::mutex> lock(mutex_);
      job->error = error;
      job->seconds = s;
      job->done = true;
    }
    cv_.notify_all();
  }
}

}  // namespace cxr::dist
