#pragma once
// The access log (SPEC.md "Access log"): one JSON object per line. Each
// worker formats into its own buffer and writes whole lines in batches, off
// the per-request path.

#include <uv.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sluice::log {

struct AccessRecord {
  std::string_view request_id;
  std::string_view client;
  std::string_view method;
  std::string_view target;
  std::string_view host;
  std::string_view route;           // "" = null
  std::string_view upstream;        // "" = null
  std::string_view server;          // "" = null
  std::string_view upstream_target; // "" = null
  int status = 0;
  uint64_t bytes_in = 0;
  uint64_t bytes_out = 0;
  double duration_ms = 0;
  bool upgrade = false;
  std::string_view error;           // Sluice-Error code, "" = null
};

// Appends one JSON line for `r` (with `ts` = now) to `out`.
void format_access_record(std::string& out, const AccessRecord& r);

// Opens the access_log target: "stdout" -> 1, "off" -> -1, else a file
// opened for appending. Returns -1 and sets `error` on failure.
int open_access_log(const std::string& target, std::string& error);

class AccessLog {
 public:
  // `fd` < 0 disables logging. The log does not own the fd.
  AccessLog(uv_loop_t* loop, int fd);
  AccessLog(const AccessLog&) = delete;
  AccessLog& operator=(const AccessLog&) = delete;

  bool enabled() const { return fd_ >= 0; }
  void write(const AccessRecord& record);
  void flush();
  // Flushes and closes the timer; call before the loop ends.
  void close();

 private:
  static void on_timer(uv_timer_t* timer) noexcept;

  int fd_;
  std::string buffer_;
  uv_timer_t timer_;
  bool timer_running_ = false;
  bool closed_ = false;
};

}  // namespace sluice::log
