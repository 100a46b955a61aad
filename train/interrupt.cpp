// SIGINT / SIGTERM during training (see interrupt.h, docs/reliability.md).
#include "train/interrupt.h"

#include <unistd.h>

#include <atomic>
#include <csignal>

namespace cxr {
namespace {

std::atomic<int> g_interrupt{0};
static_assert(std::atomic<int>::is_always_lock_free, "the signal flag must be lock-free");
struct sigaction g_old_int, g_old_term;

extern "C" void on_interrupt_signal(int sig) {
  // Async-signal-safe only: an atomic, write(2), _exit(2).
  if (g_interrupt.load() != 0) {
    static const char msg[] = "\ntrain_cxr: second signal: exiting now (RUN/last.safetensors is the last saved one)\n";
    [[maybe_unused]] auto n = ::write(2, msg, sizeof msg - 1);
    ::_exit(128 + sig);
  }
  g_interrupt.store(sig);
  static const char msg[] =
      "\ntrain_cxr: signal received: finishing the current step, then saving RUN/last.safetensors "
      "(send it again to exit at once)\n";
  [[maybe_unused]] auto n = ::write(2, msg, sizeof msg - 1);
}

}  // namespace

InterruptHandlers::InterruptHandlers() {
  g_interrupt.store(0);
  struct sigaction sa {};
  sa.sa_handler = on_interrupt_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  ::sigaction(SIGINT, &sa, &g_old_int);
  ::sigaction(SIGTERM, &sa, &g_old_term);
}

InterruptHandlers::~InterruptHandlers() {
  ::sigaction(SIGINT, &g_old_int, nullptr);
  ::sigaction(SIGTERM, &g_old_term, nullptr);
  g_interrupt.store(0);
}

int InterruptHandlers::pending() { return g_interrupt.load(); }

void InterruptHandlers::raise_pending(int sig) {
  int none = 0;
  g_interrupt.compare_exchange_strong(none, sig);
}

const char* signal_name(int sig) { return sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : "a signal"; }

}  // namespace cxr
