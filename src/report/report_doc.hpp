#pragma once
// A small document model for `report` (docs/ARCHITECTURE.md §7.4): headings, paragraphs, lists,
// tables and pictures, rendered as Markdown and as one self-contained HTML page (pictures
// inlined as base64). Inline text may use `code` and **bold**, nothing else.
#include <string>
#include <vector>

namespace ob {

class report_doc {
 public:
  void heading(int level, std::string text);
  void paragraph(std::string text);
  void bullets(std::vector<std::string> items);
  // Columns whose header ends in "ms", "%" or "x" are right-aligned.
  void table(std::vector<std::string> header, std::vector<std::vector<std::string>> rows);
  // `file` relative to the report's folder.
  void image(std::string file, std::string caption);

  std::string markdown() const;
  // Pictures are read from `dir` and inlined; a missing one becomes its caption.
  std::string html(const std::string& dir, const std::string& title) const;

 private:
  struct block {
    enum class kind { heading, paragraph, bullets, table, image } k = kind::paragraph;
    int level = 0;
    std::string text, file;
    std::vector<std::string> items;
    std::vector<std::vector<std::string>> rows;  // tables: the header first
  };
  std::vector<block> blocks_;
};

std::string base64(const std::string& bytes);

}  // namespace ob
