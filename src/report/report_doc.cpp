#include "report/report_doc.hpp"

#include <fstream>
#include <sstream>

namespace ob {
namespace {

bool right_aligned(const std::string& header) {
  return header.ends_with("ms") || header.ends_with("%") || header.ends_with(" x");
}

std::string escape_html(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// `code` and **bold**, after escaping.
std::string inline_html(const std::string& text) {
  const std::string s = escape_html(text);
  std::string out;
  bool code = false, bold = false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '`') {
      out += code ? "</code>" : "<code>";
      code = !code;
    } else if (!code && s.compare(i, 2, "**") == 0) {
      out += bold ? "</strong>" : "<strong>";
      bold = !bold;
      ++i;
    } else {
      out += s[i];
    }
  }
  if (code) out += "</code>";
  if (bold) out += "</strong>";
  return out;
}

// A table cell in Markdown: a pipe would end the cell.
std::string md_cell(const std::string& s) {
  std::string out;
  for (char c : s) out += c == '|' ? std::string("\\|") : std::string(1, c);
  return out;
}

std::string read_file(const std::string& path, bool& ok) {
  std::ifstream in(path, std::ios::binary);
  ok = static_cast<bool>(in);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

const char* page_style =
    "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;"
    "line-height:1.45;color:#222}table{border-collapse:collapse;margin:1em 0;font-size:0.9em}"
    "th,td{border:1px solid #ccc;padding:3px 8px}th{background:#f3f3f3}td.r{text-align:right}"
    "img{max-width:100%;border:1px solid #ddd}code{background:#f4f4f4;padding:0 3px}"
    "figcaption{color:#555;font-size:0.9em;margin-bottom:1.5em}";

}  // namespace

void report_doc::heading(int level, std::string text) {
  blocks_.push_back({block::kind::heading, level, std::move(text), {}, {}, {}});
}
void report_doc::paragraph(std::string text) {
  blocks_.push_back({block::kind::paragraph, 0, std::move(text), {}, {}, {}});
}
void report_doc::bullets(std::vector<std::string> items) {
  blocks_.push_back({block::kind::bullets, 0, {}, {}, std::move(items), {}});
}
void report_doc::table(std::vector<std::string> header,
                       std::vector<std::vector<std::string>> rows) {
  rows.insert(rows.begin(), std::move(header));
  blocks_.push_back({block::kind::table, 0, {}, {}, {}, std::move(rows)});
}
void report_doc::image(std::string file, std::string caption) {
  blocks_.push_back({block::kind::image, 0, std::move(caption), std::move(file), {}, {}});
}

std::string report_doc::markdown() const {
  std::string out;
  for (const block& b : blocks_) {
    switch (b.k) {
      case block::kind::heading:
        out += std::string(b.level, '#') + " " + b.text + "\n\n";
        break;
      case block::kind::paragraph:
        out += b.text + "\n\n";
        break;
      case block::kind::bullets:
        for (const std::string& i : b.items) out += "- " + i + "\n";
        out += "\n";
        break;
      case block::kind::table: {
        for (std::size_t r = 0; r < b.rows.size(); ++r) {
          for (const std::string& c : b.rows[r]) out += "| " + md_cell(c) + " ";
          out += "|\n";
          if (r == 0) {
            for (const std::string& h : b.rows[0]) out += right_aligned(h) ? "|---:" : "|---";
            out += "|\n";
          }
        }
        out += "\n";
        break;
      }
      case block::kind::image:
        out += "![" + b.text + "](" + b.file + ")\n\n*" + b.text + "*\n\n";
        break;
    }
  }
  return out;
}

std::string report_doc::html(const std::string& dir, const std::string& title) const {
  std::string out = "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>" +
                    escape_html(title) + "</title><style>" + page_style + "</style></head><body>\n";
  for (const block& b : blocks_) {
    switch (b.k) {
      case block::kind::heading: {
        const std::string h = std::string("h") + std::to_string(b.level);
        out += std::string("<") + h + ">" + inline_html(b.text) + "</" + h + ">\n";
        break;
      }
      case block::kind::paragraph:
        out += "<p>" + inline_html(b.text) + "</p>\n";
        break;
      case block::kind::bullets:
        out += "<ul>";
        for (const std::string& i : b.items) out += "<li>" + inline_html(i) + "</li>";
        out += "</ul>\n";
        break;
      case block::kind::table: {
        out += "<table>";
        for (std::size_t r = 0; r < b.rows.size(); ++r) {
          out += "<tr>";
          for (std::size_t c = 0; c < b.rows[r].size(); ++c) {
            const bool right = r > 0 && c < b.rows[0].size() && right_aligned(b.rows[0][c]);
            out += std::string(r == 0  ? "<th>"
                               : right ? "<td class=\"r\">"
                                       : "<td>") +
                   inline_html(b.rows[r][c]) + (r == 0 ? "</th>" : "</td>");
          }
          out += "</tr>";
        }
        out += "</table>\n";
        break;
      }
      case block::kind::image: {
        bool ok = false;
        const std::string png = read_file(dir + "/" + b.file, ok);
        out += "<figure>";
        if (ok)
          out += "<img alt=\"" + escape_html(b.text) + "\" src=\"data:image/png;base64," +
                 base64(png) + "\">";
        out += "<figcaption>" + inline_html(b.text) + "</figcaption></figure>\n";
        break;
      }
    }
  }
  return out + "</body></html>\n";
}

std::string base64(const std::string& bytes) {
  static const char* table = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const unsigned v = (static_cast<unsigned char>(bytes[i]) << 16) |
                       (static_cast<unsigned char>(bytes[i + 1]) << 8) |
                       static_cast<unsigned char>(bytes[i + 2]);
    for (int s = 18; s >= 0; s -= 6) out += table[(v >> s) & 63];
  }
  if (i < bytes.size()) {
    unsigned v = static_cast<unsigned char>(bytes[i]) << 16;
    if (i + 1 < bytes.size()) v |= static_cast<unsigned char>(bytes[i + 1]) << 8;
    out += table[(v >> 18) & 63];
    out += table[(v >> 12) & 63];
    out += i + 1 < bytes.size() ? table[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

}  // namespace ob
