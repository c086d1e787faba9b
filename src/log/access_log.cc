#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>

#include <nlohmann/json.hpp>

#include "sluice/log.h"

namespace sluice::log {
namespace {

// Flush when this much is buffered, or after kFlushInterval at the latest.
constexpr size_t kFlushBytes = 32 * 1024;
constexpr uint64_t kFlushIntervalMs = 200;
// Writes to a pipe are atomic only up to PIPE_BUF; workers share stdout, so
// batches go out in whole lines of at most this size.
constexpr size_t kAtomicWrite = 4096;

void append_string(std::string& out, std::string_view s) {
  out += nlohmann::json(std::string(s)).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void append_nullable(std::string& out, std::string_view s) {
  if (s.empty()) out += "null";
  else append_string(out, s);
}

void write_all(int fd, const char* data, size_t len) {
  while (len > 0) {
    ssize_t n = ::write(fd, data, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // a broken log must not break traffic
    }
    data += n;
    len -= static_cast<size_t>(n);
  }
}

}  // namespace

void format_access_record(std::string& out, const AccessRecord& r) {
  auto now = std::chrono::system_clock::now();
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  time_t secs = static_cast<time_t>(ms / 1000);
  tm utc;
  gmtime_r(&secs, &utc);
  char ts[64];
  snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", utc.tm_year + 1900, utc.tm_mon + 1,
           utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec, static_cast<int>(ms % 1000));
  char dur[32];
  snprintf(dur, sizeof dur, "%.3f", r.duration_ms);

  out += "{\"ts\":\"";
  out += ts;
  out += "\",\"request_id\":";
  append_string(out, r.request_id);
  out += ",\"client\":";
  append_string(out, r.client);
  out += ",\"method\":";
  append_string(out, r.method);
  out += ",\"target\":";
  append_string(out, r.target);
  out += ",\"host\":";
  append_nullable(out, r.host);
  out += ",\"route\":";
  append_nullable(out, r.route);
  out += ",\"upstream\":";
  append_nullable(out, r.upstream);
  out += ",\"server\":";
  append_nullable(out, r.server);
  out += ",\"upstream_target\":";
  append_nullable(out, r.upstream_target);
  out += ",\"status\":" + std::to_string(r.status);
  out += ",\"bytes_in\":" + std::to_string(r.bytes_in);
  out += ",\"bytes_out\":" + std::to_string(r.bytes_out);
  out += ",\"duration_ms\":";
  out += dur;
  out += r.upgrade ? ",\"upgrade\":true" : ",\"upgrade\":false";
  out += ",\"error\":";
  append_nullable(out, r.error);
  out += "}\n";
}

int open_access_log(const std::string& target, std::string& error) {
  if (target == "off") return -1;
  if (target == "stdout") return 1;
  int fd = ::open(target.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) error = "cannot open access log " + target + ": " + std::strerror(errno);
  return fd;
}

AccessLog::AccessLog(uv_loop_t* loop, int fd) : fd_(fd) {
  uv_timer_init(loop, &timer_);
  timer_.data = this;
}

void AccessLog::write(const AccessRecord& record) {
  if (fd_ < 0 || closed_) return;
  format_access_record(buffer_, record);
  if (buffer_.size() >= kFlushBytes) {
    flush();
  } else if (!timer_running_) {
    uv_timer_start(&timer_, on_timer, kFlushIntervalMs, 0);
    timer_running_ = true;
  }
}

void AccessLog::flush() {
  if (fd_ >= 0 && !buffer_.empty()) {
    size_t start = 0;
    while (start < buffer_.size()) {
      size_t end = std::min(buffer_.size(), start + kAtomicWrite);
      if (end < buffer_.size()) {
        size_t nl = buffer_.rfind('\n', end - 1);
        // A line longer than one atomic write goes out whole.
        end = (nl != std::string::npos && nl >= start) ? nl + 1 : buffer_.find('\n', end) + 1;
      }
      write_all(fd_, buffer_.data() + start, end - start);
      start = end;
    }
  }
  buffer_.clear();
}

void AccessLog::on_timer(uv_timer_t* timer) noexcept {
  auto* self = static_cast<AccessLog*>(timer->data);
  self->timer_running_ = false;
  self->flush();
}

void AccessLog::close() {
  if (closed_) return;
  flush();
  closed_ = true;
  uv_timer_stop(&timer_);
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), nullptr);
}

}  // namespace sluice::log
