//! Reading and writing spreadsheet files, one row at a time so memory stays flat whatever the
//! size: CSV in UTF-8 (with or without a byte-order mark), GBK/GB18030 or UTF-16 with a BOM, and
//! xlsx (read with calamine's streaming cell reader, written with rust_xlsxwriter in constant
//! memory mode). PDF output lives in `pdf.rs`.
//!
//! Every problem with a file is a [`FileError`] with a stable code (`unsupported_file_type`,
//! `unreadable_file`, `encoding_error`, `empty_file`) and, where it applies, the row and column.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;

use encoding_rs::Encoding;
use guanxi_core::Label;
use serde::Serialize;

/// The kinds of file import reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileType {
    Csv,
    Xlsx,
}

impl FileType {
    pub fn name(self) -> &'static str {
        match self {
            FileType::Csv => "csv",
            FileType::Xlsx => "xlsx",
        }
    }

    pub fn parse(s: &str) -> Option<FileType> {
        match s {
            "csv" => Some(FileType::Csv),
            "xlsx" => Some(FileType::Xlsx),
            _ => None,
        }
    }
}

/// A problem with a whole file (or one spot in it) that stops reading it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileError {
    pub code: &'static str,
    pub message: Label,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub row: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
}

impl FileError {
    pub fn new(code: &'static str, zh: impl Into<String>, en: impl Into<String>) -> Self {
        FileError {
            code,
            message: Label {
                zh: zh.into(),
                en: en.into(),
            },
            row: None,
            column: None,
        }
    }

    fn at(mut self, row: u64, column: Option<String>) -> Self {
        self.row = Some(row);
        self.column = column;
        self
    }

    pub fn unreadable(detail: impl std::fmt::Display) -> Self {
        FileError::new(
            "unreadable_file",
            format!("文件已损坏或不完整，无法读取（{detail}）"),
            format!("the file is damaged or incomplete and cannot be read ({detail})"),
        )
    }
}

impl std::fmt::Display for FileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message.en)
    }
}

impl std::error::Error for FileError {}

/// One cell as read from a file or written to one.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Empty,
    Text(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    /// A calendar date (from a date-formatted spreadsheet cell).
    Date(time::Date),
    /// A wall-clock time without a zone (spreadsheet cells have none).
    DateTime(time::PrimitiveDateTime),
}

impl Cell {
    pub fn is_empty(&self) -> bool {
        match self {
            Cell::Empty => true,
            Cell::Text(t) => t.trim().is_empty(),
            _ => false,
        }
    }

    /// The cell as text, the way a person would type it.
    pub fn to_text(&self) -> String {
        match self {
            Cell::Empty => String::new(),
            Cell::Text(t) => t.clone(),
            Cell::Int(i) => i.to_string(),
            Cell::Float(f) => format_float(*f),
            Cell::Bool(true) => "是".into(),
            Cell::Bool(false) => "否".into(),
            Cell::Date(d) => guanxi_core::time_fmt::format_date(*d),
            Cell::DateTime(dt) => format!(
                "{} {:02}:{:02}:{:02}",
                guanxi_core::time_fmt::format_date(dt.date()),
                dt.hour(),
                dt.minute(),
                dt.second()
            ),
        }
    }
}

/// A float without a spurious `.0` and without exponent notation for whole numbers (phone
/// numbers typed into Excel arrive as floats).
pub fn format_float(f: f64) -> String {
    if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e17 {
        format!("{f:.0}")
    } else {
        let s = format!("{f}");
        if s.contains('e') { format!("{f:.10}") } else { s }
    }
}

/// Column letters as a spreadsheet shows them: 0 → A, 25 → Z, 26 → AA.
pub fn column_letter(mut index: usize) -> String {
    let mut out = Vec::new();
    loop {
        out.push(b'A' + (index % 26) as u8);
        if index < 26 {
            break;
        }
        index = index / 26 - 1;
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

/// Decides the file type from its first bytes (and, for text, its name). Refuses anything that
/// is neither an xlsx (a zip) nor text.
pub fn detect_type(file_name: &str, head: &[u8]) -> Result<FileType, FileError> {
    let lower = file_name.to_lowercase();
    let unsupported = |what: &str, what_en: &str| {
        FileError::new(
            "unsupported_file_type",
            format!("不支持的文件类型（{what}），请上传 xlsx 或 csv 文件"),
            format!("unsupported file type ({what_en}); upload an xlsx or csv file"),
        )
    };
    if head.is_empty() {
        return Err(FileError::new("empty_file", "文件是空的", "the file is empty"));
    }
    if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        if lower.ends_with(".csv") || lower.ends_with(".txt") {
            return Err(unsupported("压缩文件", "a zip archive"));
        }
        return Ok(FileType::Xlsx);
    }
    if head.starts_with(&[0xD0, 0xCF, 0x11, 0xE0]) {
        return Err(unsupported(
            "旧版 Excel 97-2003 .xls，请另存为 .xlsx",
            "old Excel 97-2003 .xls; save it as .xlsx",
        ));
    }
    let binary_magic: [(&[u8], &str); 6] = [
        (b"%PDF", "PDF"),
        (b"\x89PNG", "PNG"),
        (b"\xFF\xD8\xFF", "JPEG"),
        (b"GIF8", "GIF"),
        (b"\x1F\x8B", "gzip"),
        (b"Rar!", "RAR"),
    ];
    for (magic, name) in binary_magic {
        if head.starts_with(magic) {
            return Err(unsupported(name, name));
        }
    }
    if lower.ends_with(".xlsx") {
        return Err(FileError::unreadable("不是有效的 xlsx / not a valid xlsx"));
    }
    let utf16 = head.starts_with(&[0xFF, 0xFE]) || head.starts_with(&[0xFE, 0xFF]);
    if !utf16 && head.iter().take(4096).any(|b| *b == 0) {
        // NUL bytes: UTF-16 without a byte-order mark (ASCII characters leave a NUL on one side
        // of every pair), or a binary file.
        let even_nuls = head.iter().take(4096).step_by(2).filter(|b| **b == 0).count();
        let odd_nuls = head.iter().skip(1).take(4096).step_by(2).filter(|b| **b == 0).count();
        if even_nuls == 0 || odd_nuls == 0 {
            return Err(encoding_error(
                "文件看起来是没有字节序标记（BOM）的 UTF-16 文本",
                "the file looks like UTF-16 text without a byte-order mark",
            ));
        }
        return Err(unsupported("二进制文件", "a binary file"));
    }
    Ok(FileType::Csv)
}

fn encoding_error(zh: &str, en: &str) -> FileError {
    FileError::new(
        "encoding_error",
        format!("无法识别文件编码：{zh}。请另存为 UTF-8 或 GBK 编码的 CSV"),
        format!("cannot read the file's text encoding: {en}. Save it as CSV in UTF-8 or GBK"),
    )
}

/// Text encodings accepted for CSV files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextEncoding {
    Utf8,
    Utf8Bom,
    Gbk,
    Utf16Le,
    Utf16Be,
}

impl TextEncoding {
    pub fn name(self) -> &'static str {
        match self {
            TextEncoding::Utf8 => "utf-8",
            TextEncoding::Utf8Bom => "utf-8-bom",
            TextEncoding::Gbk => "gbk",
            TextEncoding::Utf16Le => "utf-16le",
            TextEncoding::Utf16Be => "utf-16be",
        }
    }

    pub fn parse(s: &str) -> Option<TextEncoding> {
        match s.to_ascii_lowercase().replace('_', "-").as_str() {
            "utf-8" | "utf8" => Some(TextEncoding::Utf8),
            "utf-8-bom" | "utf8-bom" => Some(TextEncoding::Utf8Bom),
            "gbk" | "gb2312" | "gb18030" | "cp936" => Some(TextEncoding::Gbk),
            "utf-16le" | "utf-16" => Some(TextEncoding::Utf16Le),
            "utf-16be" => Some(TextEncoding::Utf16Be),
            _ => None,
        }
    }

    fn decoder_encoding(self) -> &'static Encoding {
        match self {
            TextEncoding::Utf8 | TextEncoding::Utf8Bom => encoding_rs::UTF_8,
            // GB18030 is a superset of GBK and GB2312; its decoder reads all three.
            TextEncoding::Gbk => encoding_rs::GB18030,
            TextEncoding::Utf16Le => encoding_rs::UTF_16LE,
            TextEncoding::Utf16Be => encoding_rs::UTF_16BE,
        }
    }
}

/// Guesses the encoding of a CSV from its first bytes: a byte-order mark decides; otherwise
/// valid UTF-8 is UTF-8, and text that decodes cleanly as GBK is GBK. Anything else is refused
/// rather than imported as mojibake.
pub fn detect_encoding(sample: &[u8], complete: bool) -> Result<TextEncoding, FileError> {
    if sample.starts_with(&[0xEF, 0xBB, 0xBF]) {
        return Ok(TextEncoding::Utf8Bom);
    }
    if sample.starts_with(&[0xFF, 0xFE]) {
        return Ok(TextEncoding::Utf16Le);
    }
    if sample.starts_with(&[0xFE, 0xFF]) {
        return Ok(TextEncoding::Utf16Be);
    }
    // A sample cut in the middle of a character is still UTF-8 if only the tail is incomplete.
    match std::str::from_utf8(sample) {
        Ok(_) => return Ok(TextEncoding::Utf8),
        Err(e) if !complete && e.error_len().is_none() && sample.len() - e.valid_up_to() < 4 => {
            return Ok(TextEncoding::Utf8);
        }
        Err(_) => {}
    }
    let cut = if complete {
        sample
    } else {
        // Stop at the last line break so a two-byte character is never split.
        let end = sample.iter().rposition(|b| *b == b'\n').map_or(sample.len(), |p| p + 1);
        &sample[..end]
    };
    let (text, had_errors) = encoding_rs::GBK.decode_without_bom_handling(cut);
    if !had_errors && plausible_chinese(&text) {
        return Ok(TextEncoding::Gbk);
    }
    Err(encoding_error(
        "既不是 UTF-8，也不是 GBK",
        "it is neither UTF-8 nor GBK",
    ))
}

/// Whether decoded text looks like Chinese or Latin text rather than a misread of another
/// encoding: most characters are ASCII, common CJK ideographs or CJK punctuation.
fn plausible_chinese(text: &str) -> bool {
    let mut total = 0usize;
    let mut odd = 0usize;
    for c in text.chars() {
        total += 1;
        let ok = c.is_ascii()
            || ('\u{4E00}'..='\u{9FFF}').contains(&c)
            || ('\u{3000}'..='\u{303F}').contains(&c)
            || ('\u{FF00}'..='\u{FFEF}').contains(&c)
            || ('\u{2000}'..='\u{206F}').contains(&c)
            || c == '·'
            || c == '×'
            || c == '—';
        if !ok {
            odd += 1;
        }
    }
    total > 0 && odd * 20 <= total
}

/// Where the data of an import comes from.
#[derive(Debug, Clone)]
pub struct SourceSpec {
    pub file_type: FileType,
    pub encoding: Option<TextEncoding>,
    pub sheet: Option<String>,
}

/// What `read_rows` found before the data.
#[derive(Debug, Clone, Default)]
pub struct SourceInfo {
    pub encoding: Option<TextEncoding>,
    pub sheet: Option<String>,
    pub sheets: Vec<String>,
}

/// What the row callback tells the reader.
pub enum Next {
    Continue,
    Stop,
}

/// Streams the rows of a file: the first non-empty row is the header (`on_header`), then every
/// data row with its 1-based row number as the spreadsheet shows it (`on_row`). Fully empty rows
/// are skipped. Stops early when a callback returns [`Next::Stop`].
pub fn read_rows(
    path: &Path,
    spec: &SourceSpec,
    on_info: &mut dyn FnMut(&SourceInfo),
    on_header: &mut dyn FnMut(u64, Vec<Cell>) -> Result<Next, FileError>,
    on_row: &mut dyn FnMut(u64, Vec<Cell>) -> Result<Next, FileError>,
) -> Result<(), FileError> {
    match spec.file_type {
        FileType::Csv => read_csv(path, spec.encoding, on_info, on_header, on_row),
        FileType::Xlsx => read_xlsx(path, spec.sheet.as_deref(), on_info, on_header, on_row),
    }
}

fn io_error(e: &std::io::Error) -> FileError {
    FileError::unreadable(e)
}

/// Transcodes UTF-16 to UTF-8 as it is read, so the CSV parser sees bytes it understands.
struct Transcoder<R: Read> {
    inner: R,
    decoder: encoding_rs::Decoder,
    input: Vec<u8>,
    output: Vec<u8>,
    pos: usize,
    eof: bool,
}

impl<R: Read> Read for Transcoder<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.pos >= self.output.len() {
            if self.eof {
                return Ok(0);
            }
            self.input.resize(64 * 1024, 0);
            let n = self.inner.read(&mut self.input)?;
            let last = n == 0;
            let mut out = String::with_capacity(n * 2 + 16);
            let (result, _) = self
                .decoder
                .decode_to_string_without_replacement(&self.input[..n], &mut out, last);
            if let encoding_rs::DecoderResult::Malformed(_, _) = result {
                return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "malformed UTF-16"));
            }
            self.output = out.into_bytes();
            self.pos = 0;
            self.eof = last;
        }
        let n = buf.len().min(self.output.len() - self.pos);
        buf[..n].copy_from_slice(&self.output[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

fn read_csv(
    path: &Path,
    encoding: Option<TextEncoding>,
    on_info: &mut dyn FnMut(&SourceInfo),
    on_header: &mut dyn FnMut(u64, Vec<Cell>) -> Result<Next, FileError>,
    on_row: &mut dyn FnMut(u64, Vec<Cell>) -> Result<Next, FileError>,
) -> Result<(), FileError> {
    let mut file = File::open(path).map_err(|e| io_error(&e))?;
    let mut sample = vec![0u8; 256 * 1024];
    let mut filled = 0;
    while filled < sample.len() {
        let n = file.read(&mut sample[filled..]).map_err(|e| io_error(&e))?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    sample.truncate(filled);
    let complete = filled < 256 * 1024;
    let encoding = match encoding {
        Some(e) => e,
        None => detect_encoding(&sample, complete)?,
    };
    on_info(&SourceInfo {
        encoding: Some(encoding),
        ..SourceInfo::default()
    });
    let file = File::open(path).map_err(|e| io_error(&e))?;
    let reader: Box<dyn Read> = match encoding {
        TextEncoding::Utf16Le | TextEncoding::Utf16Be => Box::new(Transcoder {
            inner: BufReader::with_capacity(256 * 1024, file),
            decoder: encoding.decoder_encoding().new_decoder_with_bom_removal(),
            input: Vec::new(),
            output: Vec::new(),
            pos: 0,
            eof: false,
        }),
        _ => {
            let mut buffered = BufReader::with_capacity(256 * 1024, file);
            if sample.starts_with(&[0xEF, 0xBB, 0xBF]) {
                let mut bom = [0u8; 3];
                buffered.read_exact(&mut bom).map_err(|e| io_error(&e))?;
            }
            Box::new(buffered)
        }
    };
    // UTF-16 arrives transcoded; every other encoding is ASCII-compatible, so the CSV structure
    // is parsed on bytes and each field decoded on its own (errors then name row and column).
    let text_encoding = match encoding {
        TextEncoding::Utf16Le | TextEncoding::Utf16Be => encoding_rs::UTF_8,
        other => other.decoder_encoding(),
    };
    let first_line = {
        let text = String::from_utf8_lossy(&sample[..sample.len().min(64 * 1024)]);
        text.lines().next().unwrap_or_default().to_owned()
    };
    let delimiter = [b',', b'\t', b';']
        .into_iter()
        .max_by_key(|d| first_line.bytes().filter(|b| b == d).count())
        .unwrap_or(b',');
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .buffer_capacity(256 * 1024)
        .from_reader(reader);
    let mut record = csv::ByteRecord::new();
    let mut header_seen = false;
    let mut row_no: u64 = 0;
    loop {
        match csv.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let row = e.position().map_or(row_no + 1, |p| p.record() + 1);
                return Err(match e.kind() {
                    csv::ErrorKind::Io(io) if io.kind() == std::io::ErrorKind::InvalidData => {
                        encoding_error("文本中有无效的 UTF-16 字符", "the text has invalid UTF-16 characters")
                            .at(row, None)
                    }
                    _ => FileError::unreadable(&e).at(row, None),
                });
            }
        }
        row_no += 1;
        let mut cells = Vec::with_capacity(record.len());
        for (i, field) in record.iter().enumerate() {
            match text_encoding.decode_without_bom_handling_and_without_replacement(field) {
                Some(text) => cells.push(if text.is_empty() {
                    Cell::Empty
                } else {
                    Cell::Text(text.into_owned())
                }),
                None => {
                    return Err(FileError::new(
                        "encoding_error",
                        format!(
                            "第{row_no}行第{}列含有不是 {} 编码的字符；请确认文件编码，或另存为 UTF-8",
                            column_letter(i),
                            encoding.name()
                        ),
                        format!(
                            "row {row_no}, column {} has bytes that are not {}; check the file's encoding or save it as UTF-8",
                            column_letter(i),
                            encoding.name()
                        ),
                    )
                    .at(row_no, Some(column_letter(i))));
                }
            }
        }
        if cells.iter().all(Cell::is_empty) {
            continue;
        }
        let next = if header_seen {
            on_row(row_no, cells)?
        } else {
            header_seen = true;
            on_header(row_no, cells)?
        };
        if let Next::Stop = next {
            return Ok(());
        }
    }
    if !header_seen {
        return Err(FileError::new("empty_file", "文件是空的", "the file is empty"));
    }
    Ok(())
}

fn xlsx_cell(value: &calamine::DataRef<'_>) -> Cell {
    use calamine::DataRef;
    match value {
        DataRef::Empty => Cell::Empty,
        DataRef::Int(i) => Cell::Int(*i),
        DataRef::Float(f) => Cell::Float(*f),
        DataRef::String(s) => Cell::Text(s.clone()),
        DataRef::SharedString(s) => Cell::Text((*s).to_owned()),
        DataRef::Bool(b) => Cell::Bool(*b),
        DataRef::DateTime(dt) => {
            let (y, mo, d, h, mi, s, _) = dt.to_ymd_hms_milli();
            let date = time::Month::try_from(mo)
                .ok()
                .and_then(|m| time::Date::from_calendar_date(i32::from(y), m, d).ok());
            match date {
                Some(date) if h == 0 && mi == 0 && s == 0 => Cell::Date(date),
                Some(date) => match time::Time::from_hms(h, mi, s) {
                    Ok(t) => Cell::DateTime(time::PrimitiveDateTime::new(date, t)),
                    Err(_) => Cell::Date(date),
                },
                None => Cell::Float(dt.as_f64()),
            }
        }
        DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => Cell::Text(s.clone()),
        DataRef::Error(e) => Cell::Text(format!("#{e:?}")),
    }
}

fn read_xlsx(
    path: &Path,
    sheet: Option<&str>,
    on_info: &mut dyn FnMut(&SourceInfo),
    on_header: &mut dyn FnMut(u64, Vec<Cell>) -> Result<Next, FileError>,
    on_row: &mut dyn FnMut(u64, Vec<Cell>) -> Result<Next, FileError>,
) -> Result<(), FileError> {
    use calamine::Reader;
    let file = File::open(path).map_err(|e| io_error(&e))?;
    let mut workbook: calamine::Xlsx<_> =
        calamine::Xlsx::new(BufReader::with_capacity(256 * 1024, file)).map_err(FileError::unreadable)?;
    let sheets = workbook.sheet_names();
    let name = match sheet {
        Some(s) => sheets.iter().find(|n| n.as_str() == s).cloned().ok_or_else(|| {
            FileError::new(
                "unknown_sheet",
                format!("工作表“{s}”不存在，可选：{}", sheets.join("、")),
                format!("there is no sheet '{s}'; sheets: {}", sheets.join(", ")),
            )
        })?,
        None => sheets
            .first()
            .cloned()
            .ok_or_else(|| FileError::new("empty_file", "文件中没有工作表", "the workbook has no sheets"))?,
    };
    on_info(&SourceInfo {
        encoding: None,
        sheet: Some(name.clone()),
        sheets: sheets.clone(),
    });
    let mut cells = workbook.worksheet_cells_reader(&name).map_err(FileError::unreadable)?;
    let mut header_seen = false;
    let mut current: Option<(u32, Vec<Cell>)> = None;
    let mut emit = |row: u32, values: Vec<Cell>, header_seen: &mut bool| -> Result<Next, FileError> {
        if values.iter().all(Cell::is_empty) {
            return Ok(Next::Continue);
        }
        let row_no = u64::from(row) + 1;
        if *header_seen {
            on_row(row_no, values)
        } else {
            *header_seen = true;
            on_header(row_no, values)
        }
    };
    loop {
        let next = cells.next_cell().map_err(|e| {
            let row = current.as_ref().map_or(1, |(r, _)| u64::from(*r) + 1);
            FileError::unreadable(e).at(row, None)
        })?;
        let Some(cell) = next else { break };
        let (row, col) = cell.get_position();
        let value = xlsx_cell(cell.get_value());
        match &mut current {
            Some((r, values)) if *r == row => {
                let col = col as usize;
                if col >= values.len() {
                    values.resize(col + 1, Cell::Empty);
                }
                values[col] = value;
            }
            _ => {
                if let Some((r, values)) = current.take()
                    && let Next::Stop = emit(r, values, &mut header_seen)?
                {
                    return Ok(());
                }
                let col = col as usize;
                let mut values = vec![Cell::Empty; col + 1];
                values[col] = value;
                current = Some((row, values));
            }
        }
    }
    if let Some((r, values)) = current.take()
        && let Next::Stop = emit(r, values, &mut header_seen)?
    {
        return Ok(());
    }
    if !header_seen {
        return Err(FileError::new("empty_file", "工作表是空的", "the sheet is empty"));
    }
    Ok(())
}

/// Writes a table row by row.
pub trait TableWriter: Send {
    fn header(&mut self, columns: &[String]) -> anyhow::Result<()>;
    fn row(&mut self, cells: &[Cell]) -> anyhow::Result<()>;
    /// Flushes everything to the file.
    fn finish(self: Box<Self>) -> anyhow::Result<()>;
}

/// CSV in UTF-8 with a byte-order mark, so Excel opens Chinese text correctly.
pub struct CsvWriter {
    out: csv::Writer<BufWriter<File>>,
}

impl CsvWriter {
    pub fn create(path: &Path) -> anyhow::Result<CsvWriter> {
        let mut file = BufWriter::with_capacity(256 * 1024, File::create(path)?);
        file.write_all(&[0xEF, 0xBB, 0xBF])?;
        Ok(CsvWriter {
            out: csv::WriterBuilder::new().flexible(true).from_writer(file),
        })
    }
}

impl TableWriter for CsvWriter {
    fn header(&mut self, columns: &[String]) -> anyhow::Result<()> {
        self.out.write_record(columns)?;
        Ok(())
    }

    fn row(&mut self, cells: &[Cell]) -> anyhow::Result<()> {
        self.out.write_record(cells.iter().map(Cell::to_text))?;
        Ok(())
    }

    fn finish(self: Box<Self>) -> anyhow::Result<()> {
        let mut file = self.out.into_inner().map_err(|e| anyhow::anyhow!("{}", e.error()))?;
        file.flush()?;
        file.get_ref().sync_all()?;
        Ok(())
    }
}

/// Rows per xlsx sheet (Excel's limit is 1,048,576 including the header).
const XLSX_MAX_ROWS: u32 = 1_048_575;

/// xlsx in rust_xlsxwriter's constant-memory mode: each row goes to a temporary file as it is
/// written, so a million rows need no more memory than ten. A table longer than Excel's sheet
/// limit continues on further sheets, each with the header.
pub struct XlsxWriter {
    workbook: rust_xlsxwriter::Workbook,
    path: std::path::PathBuf,
    columns: Vec<String>,
    row: u32,
    sheets: usize,
    bold: rust_xlsxwriter::Format,
    money: rust_xlsxwriter::Format,
}

impl XlsxWriter {
    pub fn create(path: &Path, temp_dir: &Path) -> anyhow::Result<XlsxWriter> {
        let mut workbook = rust_xlsxwriter::Workbook::new();
        workbook.set_tempdir(temp_dir)?;
        Ok(XlsxWriter {
            workbook,
            path: path.to_path_buf(),
            columns: Vec::new(),
            row: 0,
            sheets: 0,
            bold: rust_xlsxwriter::Format::new().set_bold(),
            money: rust_xlsxwriter::Format::new().set_num_format("0.00"),
        })
    }

    fn new_sheet(&mut self) -> anyhow::Result<()> {
        let sheet = self.workbook.add_worksheet_with_constant_memory()?;
        self.sheets += 1;
        sheet.set_name(format!("Sheet{}", self.sheets))?;
        for (i, c) in self.columns.iter().enumerate() {
            let col = u16::try_from(i)?;
            sheet.write_string_with_format(0, col, c, &self.bold)?;
            let width = c.chars().map(|ch| if ch.is_ascii() { 1.1 } else { 2.1 }).sum::<f64>();
            sheet.set_column_width(col, width.clamp(10.0, 40.0))?;
        }
        sheet.set_freeze_panes(1, 0)?;
        self.row = 1;
        Ok(())
    }
}

impl TableWriter for XlsxWriter {
    fn header(&mut self, columns: &[String]) -> anyhow::Result<()> {
        self.columns = columns.to_vec();
        self.new_sheet()
    }

    fn row(&mut self, cells: &[Cell]) -> anyhow::Result<()> {
        if self.row > XLSX_MAX_ROWS {
            self.new_sheet()?;
        }
        let index = self.sheets.saturating_sub(1);
        let row = self.row;
        let money = self.money.clone();
        let sheet = self.workbook.worksheet_from_index(index)?;
        for (i, cell) in cells.iter().enumerate() {
            let col = u16::try_from(i)?;
            match cell {
                Cell::Empty => {}
                Cell::Int(n) if n.unsigned_abs() < (1u64 << 53) => {
                    #[expect(clippy::cast_precision_loss, reason = "checked to be exact above")]
                    sheet.write_number(row, col, *n as f64)?;
                }
                Cell::Float(f) => {
                    sheet.write_number_with_format(row, col, *f, &money)?;
                }
                Cell::Bool(b) => {
                    sheet.write_string(row, col, if *b { "是" } else { "否" })?;
                }
                other => {
                    sheet.write_string(row, col, other.to_text())?;
                }
            }
        }
        self.row += 1;
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> anyhow::Result<()> {
        if self.sheets == 0 {
            self.new_sheet()?;
        }
        let file = BufWriter::with_capacity(256 * 1024, File::create(&self.path)?);
        self.workbook.save_to_writer(file)?;
        File::open(&self.path)?.sync_all()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_letters_follow_spreadsheets() {
        assert_eq!(column_letter(0), "A");
        assert_eq!(column_letter(25), "Z");
        assert_eq!(column_letter(26), "AA");
        assert_eq!(column_letter(27), "AB");
        assert_eq!(column_letter(701), "ZZ");
        assert_eq!(column_letter(702), "AAA");
    }

    #[test]
    fn floats_print_like_people_type_them() {
        assert_eq!(format_float(13_812_345_678.0), "13812345678");
        assert_eq!(format_float(12.5), "12.5");
    }

    #[test]
    fn encodings_are_recognised() {
        assert_eq!(detect_encoding("名称,电话\n".as_bytes(), true), Ok(TextEncoding::Utf8));
        assert_eq!(detect_encoding(b"\xEF\xBB\xBFname\n", true), Ok(TextEncoding::Utf8Bom));
        let (gbk, _, _) = encoding_rs::GBK.encode("客户名称,联系电话\n北京中平能源有限公司,13812345678\n");
        assert_eq!(detect_encoding(&gbk, true), Ok(TextEncoding::Gbk));
        // Latin-1 "Café Müller" is neither UTF-8 nor GBK.
        let latin1 = b"name\nCaf\xE9 M\xFCller\n";
        assert_eq!(detect_encoding(latin1, true).map_err(|e| e.code), Err("encoding_error"));
    }

    #[test]
    fn file_types_are_recognised_by_content() {
        assert_eq!(detect_type("a.xlsx", b"PK\x03\x04rest"), Ok(FileType::Xlsx));
        assert_eq!(detect_type("a.csv", b"name,phone\n"), Ok(FileType::Csv));
        assert_eq!(
            detect_type("a.pdf", b"%PDF-1.7").map_err(|e| e.code),
            Err("unsupported_file_type")
        );
        assert_eq!(
            detect_type("a.xls", &[0xD0, 0xCF, 0x11, 0xE0, 0xA1]).map_err(|e| e.code),
            Err("unsupported_file_type")
        );
        assert_eq!(
            detect_type("a.xlsx", b"just text").map_err(|e| e.code),
            Err("unreadable_file")
        );
    }
}
