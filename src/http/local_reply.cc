#include <charconv>

#include "sluice/http.h"

namespace sluice::http {

std::string_view reason_phrase(int status) {
  switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Content Too Large";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Unknown";
  }
}

std::string simple_reply(int status, std::string_view content_type, std::string_view body,
                         std::string_view request_id, bool close, std::string_view extra_headers,
                         bool head) {
  std::string out;
  out.reserve(160 + body.size() + extra_headers.size());
  char num[24];
  out.append("HTTP/1.1 ");
  out.append(num, std::to_chars(num, num + sizeof num, status).ptr);
  out.push_back(' ');
  out.append(reason_phrase(status));
  out.append("\r\n");
  if (!content_type.empty()) {
    out.append("Content-Type: ");
    out.append(content_type);
    out.append("\r\n");
  }
  out.append("Content-Length: ");
  out.append(num, std::to_chars(num, num + sizeof num, body.size()).ptr);
  out.append("\r\n");
  if (!request_id.empty()) {
    out.append("X-Request-Id: ");
    out.append(request_id);
    out.append("\r\n");
  }
  out.append(extra_headers);
  if (close) out.append("Connection: close\r\n");
  out.append("\r\n");
  if (!head) out.append(body);
  return out;
}

std::string error_reply(base::ErrorCode code, std::string_view detail, std::string_view request_id,
                        bool close, bool head) {
  const base::ErrorInfo& info = base::error_info(code);
  std::string body(info.reason);
  if (!detail.empty()) {
    body += ": ";
    body += detail;
  }
  body += "\n";
  std::string extra = "Sluice-Error: " + std::string(info.code) + "\r\n";
  return simple_reply(info.status, "text/plain; charset=utf-8", body, request_id, close, extra, head);
}

}  // namespace sluice::http
