// SIGINT / SIGTERM during training (docs/reliability.md).
#pragma once

namespace cxr {

// SIGINT / SIGTERM handlers for the lifetime of the object (train_model holds one): the first
// signal only sets a flag (async-signal-safe), which the loop reads after each step; a second
// signal exits at once with 128 + signal. The previous handlers are restored on destruction.
class InterruptHandlers {
 public:
  InterruptHandlers();
  ~InterruptHandlers();
  InterruptHandlers(const InterruptHandlers&) = delete;
  InterruptHandlers& operator=(const InterruptHandlers&) = delete;
  static int pending();  // the signal received, or 0
  // Another rank of a distributed job was interrupted by `sig`: this one stops as if it had
  // received it (it had none yet).
  static void raise_pending(int sig);
};

// "SIGINT", "SIGTERM" or "a signal".
const char* signal_name(int sig);

}  // namespace cxr
