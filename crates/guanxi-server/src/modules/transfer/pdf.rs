//! PDF tables with Chinese text, written page by page to a file so memory stays flat for any
//! number of rows. The font is WenQuanYi Micro Hei (Apache-2.0), shipped in the binary; each
//! PDF embeds a subset holding only the glyphs it uses (see
//! docs/decisions/0004-pdf-chinese-font.md). Text is encoded as glyph ids (Identity-H) with a
//! ToUnicode map, so it can be searched and copied.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::Context as _;
use pdf_writer::types::{CidFontType, FontFlags, SystemInfo};
use pdf_writer::{Chunk, Content, Filter, Finish, Name, Rect, Ref, Str, TextStr};

use super::formats::{Cell, TableWriter};

static FONT: &[u8] = include_bytes!("fonts/wqy-microhei.ttc");
const FONT_NAME: &[u8] = b"GXSUBS+WenQuanYiMicroHei";

const PAGE_W: f32 = 842.0; // A4 landscape
const PAGE_H: f32 = 595.0;
const MARGIN: f32 = 28.0;
const FONT_SIZE: f32 = 8.5;
const ROW_H: f32 = 15.0;
const TITLE_SIZE: f32 = 13.0;
const PAD: f32 = 3.0;
/// Rows measured before the column widths are fixed for the whole document.
const LAYOUT_SAMPLE: usize = 40;

pub struct PdfWriter {
    out: BufWriter<File>,
    pos: usize,
    offsets: Vec<(i32, usize)>,
    next_id: i32,
    pages_id: Ref,
    font_id: Ref,
    page_ids: Vec<Ref>,
    face: ttf_parser::Face<'static>,
    used: BTreeMap<u16, char>,
    title: String,
    subtitle: String,
    columns: Vec<String>,
    widths: Vec<f32>,
    pending: Vec<Vec<String>>,
    laid_out: bool,
    content: Option<Content>,
    y: f32,
    row_index: u64,
}

fn zlib(data: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(6));
    enc.write_all(data)?;
    Ok(enc.finish()?)
}

impl PdfWriter {
    /// Starts a PDF at `path` with a title line (e.g. the object name) and a subtitle.
    pub fn create(path: &Path, title: &str, subtitle: &str) -> anyhow::Result<PdfWriter> {
        let face = ttf_parser::Face::parse(FONT, 0).context("the embedded font cannot be read")?;
        let mut out = BufWriter::with_capacity(256 * 1024, File::create(path)?);
        let header = b"%PDF-1.7\n%\xE2\xE3\xCF\xD3\n";
        out.write_all(header)?;
        let mut w = PdfWriter {
            out,
            pos: header.len(),
            offsets: Vec::new(),
            next_id: 1,
            pages_id: Ref::new(1),
            font_id: Ref::new(1),
            page_ids: Vec::new(),
            face,
            used: BTreeMap::new(),
            title: title.to_owned(),
            subtitle: subtitle.to_owned(),
            columns: Vec::new(),
            widths: Vec::new(),
            pending: Vec::new(),
            laid_out: false,
            content: None,
            y: 0.0,
            row_index: 0,
        };
        w.pages_id = w.alloc();
        w.font_id = w.alloc();
        Ok(w)
    }

    fn alloc(&mut self) -> Ref {
        let r = Ref::new(self.next_id);
        self.next_id += 1;
        r
    }

    /// Writes one chunk (one or more objects, each allocated by `alloc`) to the file.
    fn emit(&mut self, chunk: &Chunk) -> anyhow::Result<()> {
        // Each chunk holds exactly one object, so its offset is where the chunk starts.
        for r in chunk.refs() {
            self.offsets.push((r.get(), self.pos));
        }
        let bytes = chunk.as_bytes();
        self.out.write_all(bytes)?;
        self.pos += bytes.len();
        Ok(())
    }

    fn glyph(&mut self, c: char) -> u16 {
        let gid = self.face.glyph_index(c).map_or(0, |g| g.0);
        if gid != 0 {
            self.used.entry(gid).or_insert(c);
        }
        gid
    }

    fn advance(&self, gid: u16, size: f32) -> f32 {
        let upem = f32::from(self.face.units_per_em());
        let adv = self.face.glyph_hor_advance(ttf_parser::GlyphId(gid)).unwrap_or(0);
        f32::from(adv) * size / upem
    }

    fn text_width(&mut self, text: &str, size: f32) -> f32 {
        text.chars()
            .filter(|c| !c.is_control())
            .map(|c| {
                let g = self.glyph(c);
                self.advance(g, size)
            })
            .sum()
    }

    /// Encodes text as glyph ids, cut with an ellipsis to fit `max_width`.
    fn encode_fitting(&mut self, text: &str, size: f32, max_width: f32) -> Vec<u8> {
        let ellipsis = self.glyph('…');
        let ellipsis_w = self.advance(ellipsis, size);
        let chars: Vec<char> = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
        let mut glyphs = Vec::with_capacity(chars.len());
        let mut width = 0.0;
        let total = self.text_width(text, size);
        let fits = total <= max_width;
        for c in chars {
            let g = self.glyph(c);
            let w = self.advance(g, size);
            if !fits && width + w + ellipsis_w > max_width {
                glyphs.push(ellipsis);
                break;
            }
            width += w;
            glyphs.push(g);
        }
        glyphs.iter().flat_map(|g| g.to_be_bytes()).collect()
    }

    fn layout(&mut self) {
        let n = self.columns.len().max(1);
        let mut natural = vec![0.0f32; n];
        let columns = self.columns.clone();
        for (i, c) in columns.iter().enumerate() {
            natural[i] = self.text_width(c, FONT_SIZE) + 2.0 * PAD;
        }
        let pending = self.pending.clone();
        for row in &pending {
            for (i, text) in row.iter().enumerate().take(n) {
                let w = self.text_width(text, FONT_SIZE) + 2.0 * PAD;
                natural[i] = natural[i].max(w);
            }
        }
        let available = PAGE_W - 2.0 * MARGIN;
        for w in &mut natural {
            *w = w.clamp(36.0, 260.0);
        }
        let sum: f32 = natural.iter().sum();
        let scale = available / sum;
        self.widths = natural.iter().map(|w| w * scale).collect();
        self.laid_out = true;
    }

    fn start_page(&mut self) {
        let mut content = Content::new();
        let font = Name(b"F1");
        let top = PAGE_H - MARGIN;
        let title = self.encode_fitting(&self.title.clone(), TITLE_SIZE, PAGE_W - 2.0 * MARGIN);
        content.begin_text();
        content.set_font(font, TITLE_SIZE);
        content.next_line(MARGIN, top - TITLE_SIZE);
        content.show(Str(&title));
        content.end_text();
        let sub = self.encode_fitting(&self.subtitle.clone(), FONT_SIZE, PAGE_W - 2.0 * MARGIN);
        content.begin_text();
        content.set_font(font, FONT_SIZE);
        content.next_line(MARGIN, top - TITLE_SIZE - 14.0);
        content.show(Str(&sub));
        content.end_text();
        let page_label = format!("第 {} 页 / Page {}", self.page_ids.len() + 1, self.page_ids.len() + 1);
        let label = self.encode_fitting(&page_label, FONT_SIZE, 200.0);
        let label_w = self.text_width(&page_label, FONT_SIZE);
        content.begin_text();
        content.set_font(font, FONT_SIZE);
        content.next_line(PAGE_W - MARGIN - label_w, MARGIN - 14.0);
        content.show(Str(&label));
        content.end_text();
        // Header row on a grey band.
        let header_top = top - TITLE_SIZE - 24.0;
        content.set_fill_gray(0.88);
        content.rect(MARGIN, header_top - ROW_H, PAGE_W - 2.0 * MARGIN, ROW_H);
        content.fill_nonzero();
        content.set_fill_gray(0.0);
        self.content = Some(content);
        self.y = header_top;
        let columns = self.columns.clone();
        self.draw_row(&columns, true);
    }

    fn draw_row(&mut self, cells: &[String], header: bool) {
        let mut encoded = Vec::with_capacity(cells.len());
        for (i, text) in cells.iter().enumerate().take(self.widths.len()) {
            let max = self.widths[i] - 2.0 * PAD;
            encoded.push(self.encode_fitting(text, FONT_SIZE, max));
        }
        let y = self.y;
        let widths = self.widths.clone();
        let Some(content) = self.content.as_mut() else { return };
        if !header && self.row_index % 2 == 1 {
            content.set_fill_gray(0.96);
            content.rect(MARGIN, y - ROW_H, PAGE_W - 2.0 * MARGIN, ROW_H);
            content.fill_nonzero();
            content.set_fill_gray(0.0);
        }
        let mut x = MARGIN;
        content.begin_text();
        content.set_font(Name(b"F1"), FONT_SIZE);
        let mut last = (0.0, 0.0);
        for (i, glyphs) in encoded.iter().enumerate() {
            let pos = (x + PAD, y - ROW_H + 4.5);
            content.next_line(pos.0 - last.0, pos.1 - last.1);
            last = pos;
            content.show(Str(glyphs));
            x += widths[i];
        }
        content.end_text();
        content.set_stroke_gray(0.75);
        content.set_line_width(0.4);
        content.move_to(MARGIN, y - ROW_H);
        content.line_to(PAGE_W - MARGIN, y - ROW_H);
        content.stroke();
        self.y -= ROW_H;
    }

    fn finish_page(&mut self) -> anyhow::Result<()> {
        let Some(content) = self.content.take() else {
            return Ok(());
        };
        let data = zlib(&content.finish())?;
        let content_id = self.alloc();
        let mut chunk = Chunk::new();
        chunk.stream(content_id, &data).filter(Filter::FlateDecode);
        self.emit(&chunk)?;
        let page_id = self.alloc();
        let mut chunk = Chunk::new();
        let mut page = chunk.page(page_id);
        page.media_box(Rect::new(0.0, 0.0, PAGE_W, PAGE_H));
        page.parent(self.pages_id);
        page.contents(content_id);
        page.resources().fonts().pair(Name(b"F1"), self.font_id);
        page.finish();
        self.emit(&chunk)?;
        self.page_ids.push(page_id);
        Ok(())
    }

    fn put_row(&mut self, texts: &[String]) -> anyhow::Result<()> {
        if self.content.is_none() {
            self.start_page();
        }
        if self.y - ROW_H < MARGIN {
            self.finish_page()?;
            self.start_page();
        }
        self.draw_row(texts, false);
        self.row_index += 1;
        Ok(())
    }

    fn flush_pending(&mut self) -> anyhow::Result<()> {
        if !self.laid_out {
            self.layout();
        }
        for row in std::mem::take(&mut self.pending) {
            self.put_row(&row)?;
        }
        Ok(())
    }

    fn write_font(&mut self) -> anyhow::Result<()> {
        let keep: BTreeSet<u16> = self.used.keys().copied().collect();
        let subset = subset_truetype(FONT, 0, &keep)?;
        let upem = f32::from(self.face.units_per_em());
        let scale = |v: i16| f32::from(v) * 1000.0 / upem;
        let bbox = self.face.global_bounding_box();
        let (cid_id, desc_id, file_id, cmap_id) = (self.alloc(), self.alloc(), self.alloc(), self.alloc());

        let mut chunk = Chunk::new();
        chunk
            .type0_font(self.font_id)
            .base_font(Name(FONT_NAME))
            .encoding_predefined(Name(b"Identity-H"))
            .descendant_font(cid_id)
            .to_unicode(cmap_id);
        self.emit(&chunk)?;

        let system_info = SystemInfo {
            registry: Str(b"Adobe"),
            ordering: Str(b"Identity"),
            supplement: 0,
        };
        let widths: Vec<(u16, f32)> = self.used.keys().map(|g| (*g, self.advance(*g, 1000.0))).collect();
        let mut chunk = Chunk::new();
        let mut cid = chunk.cid_font(cid_id);
        cid.subtype(CidFontType::Type2);
        cid.base_font(Name(FONT_NAME));
        cid.system_info(system_info);
        cid.font_descriptor(desc_id);
        cid.default_width(1000.0);
        cid.cid_to_gid_map_predefined(Name(b"Identity"));
        {
            let mut w = cid.widths();
            for (g, width) in &widths {
                w.consecutive(*g, [*width]);
            }
        }
        cid.finish();
        self.emit(&chunk)?;

        let mut chunk = Chunk::new();
        chunk
            .font_descriptor(desc_id)
            .name(Name(FONT_NAME))
            .flags(FontFlags::NON_SYMBOLIC)
            .bbox(Rect::new(
                scale(bbox.x_min),
                scale(bbox.y_min),
                scale(bbox.x_max),
                scale(bbox.y_max),
            ))
            .italic_angle(0.0)
            .ascent(scale(self.face.ascender()))
            .descent(scale(self.face.descender()))
            .cap_height(scale(self.face.capital_height().unwrap_or(self.face.ascender())))
            .stem_v(80.0)
            .font_file2(file_id);
        self.emit(&chunk)?;

        let compressed = zlib(&subset)?;
        let mut chunk = Chunk::new();
        chunk
            .stream(file_id, &compressed)
            .filter(Filter::FlateDecode)
            .pair(Name(b"Length1"), i32::try_from(subset.len())?);
        self.emit(&chunk)?;

        let mut cmap = pdf_writer::types::UnicodeCmap::new(Name(b"Custom"), system_info);
        for (g, c) in &self.used {
            cmap.pair(*g, *c);
        }
        let cmap_data = cmap.finish();
        let mut chunk = Chunk::new();
        chunk.cmap(cmap_id, &cmap_data);
        self.emit(&chunk)?;
        Ok(())
    }
}

impl TableWriter for PdfWriter {
    fn header(&mut self, columns: &[String]) -> anyhow::Result<()> {
        self.columns = columns.to_vec();
        Ok(())
    }

    fn row(&mut self, cells: &[Cell]) -> anyhow::Result<()> {
        let texts: Vec<String> = cells.iter().map(Cell::to_text).collect();
        if self.laid_out {
            self.put_row(&texts)
        } else {
            self.pending.push(texts);
            if self.pending.len() >= LAYOUT_SAMPLE {
                self.flush_pending()?;
            }
            Ok(())
        }
    }

    fn finish(mut self: Box<Self>) -> anyhow::Result<()> {
        self.flush_pending()?;
        if self.content.is_none() && self.page_ids.is_empty() {
            self.start_page();
        }
        self.finish_page()?;
        self.write_font()?;

        let mut chunk = Chunk::new();
        let count = i32::try_from(self.page_ids.len())?;
        chunk
            .pages(self.pages_id)
            .kids(self.page_ids.iter().copied())
            .count(count);
        self.emit(&chunk)?;
        let info_id = self.alloc();
        let mut chunk = Chunk::new();
        chunk
            .indirect(info_id)
            .dict()
            .pair(Name(b"Title"), TextStr(&self.title))
            .pair(Name(b"Producer"), TextStr("Guanxi"));
        self.emit(&chunk)?;
        let catalog_id = self.alloc();
        let mut chunk = Chunk::new();
        chunk
            .indirect(catalog_id)
            .dict()
            .pair(Name(b"Type"), Name(b"Catalog"))
            .pair(Name(b"Pages"), self.pages_id);
        self.emit(&chunk)?;

        // Cross-reference table and trailer.
        let mut offsets = std::mem::take(&mut self.offsets);
        offsets.sort_unstable();
        let size = self.next_id;
        let xref_at = self.pos;
        let mut xref = format!("xref\n0 {size}\n0000000000 65535 f \n");
        let mut expected = 1;
        for (id, offset) in offsets {
            while expected < id {
                xref.push_str("0000000000 65535 f \n");
                expected += 1;
            }
            xref.push_str(&format!("{offset:010} 00000 n \n"));
            expected = id + 1;
        }
        while expected < size {
            xref.push_str("0000000000 65535 f \n");
            expected += 1;
        }
        xref.push_str(&format!(
            "trailer\n<< /Size {size} /Root {} 0 R /Info {} 0 R >>\nstartxref\n{xref_at}\n%%EOF\n",
            catalog_id.get(),
            info_id.get()
        ));
        self.out.write_all(xref.as_bytes())?;
        self.out.flush()?;
        self.out.get_ref().sync_all()?;
        Ok(())
    }
}

fn be_u16(d: &[u8], at: usize) -> anyhow::Result<u16> {
    let b = d.get(at..at + 2).context("font data ends early")?;
    Ok(u16::from_be_bytes([b[0], b[1]]))
}

fn be_u32(d: &[u8], at: usize) -> anyhow::Result<u32> {
    let b = d.get(at..at + 4).context("font data ends early")?;
    Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

fn checksum(data: &[u8]) -> u32 {
    data.chunks(4).fold(0u32, |sum, c| {
        let mut w = [0u8; 4];
        w[..c.len()].copy_from_slice(c);
        sum.wrapping_add(u32::from_be_bytes(w))
    })
}

/// A TrueType subset that keeps glyph ids as they are (so the PDF can map CIDs to glyphs with
/// `Identity`) but empties every glyph not in `keep` (and not a component of one that is). The
/// tables a PDF viewer needs are kept; names, the character map and PostScript names are not.
pub fn subset_truetype(data: &[u8], face_index: u32, keep: &BTreeSet<u16>) -> anyhow::Result<Vec<u8>> {
    let face_at = if data.get(0..4) == Some(b"ttcf") {
        be_u32(data, 12 + 4 * face_index as usize)? as usize
    } else {
        0
    };
    let num_tables = be_u16(data, face_at + 4)? as usize;
    let mut tables: BTreeMap<[u8; 4], &[u8]> = BTreeMap::new();
    for i in 0..num_tables {
        let rec = face_at + 12 + 16 * i;
        let tag: [u8; 4] = data
            .get(rec..rec + 4)
            .context("font table directory ends early")?
            .try_into()?;
        let offset = be_u32(data, rec + 8)? as usize;
        let length = be_u32(data, rec + 12)? as usize;
        let bytes = data.get(offset..offset + length).context("font table out of range")?;
        tables.insert(tag, bytes);
    }
    let table = |tag: &[u8; 4]| {
        tables
            .get(tag)
            .copied()
            .with_context(|| format!("font has no {tag:?} table"))
    };
    let head = table(b"head")?;
    let maxp = table(b"maxp")?;
    let loca = table(b"loca")?;
    let glyf = table(b"glyf")?;
    let long_loca = be_u16(head, 50)? == 1;
    let num_glyphs = be_u16(maxp, 4)? as usize;
    let glyph_range = |gid: usize| -> anyhow::Result<(usize, usize)> {
        if long_loca {
            Ok((be_u32(loca, gid * 4)? as usize, be_u32(loca, gid * 4 + 4)? as usize))
        } else {
            Ok((
                be_u16(loca, gid * 2)? as usize * 2,
                be_u16(loca, gid * 2 + 2)? as usize * 2,
            ))
        }
    };

    // Glyphs to keep: the requested ones, .notdef, and components of composite glyphs.
    let mut kept: BTreeSet<usize> = BTreeSet::new();
    let mut todo: Vec<usize> = keep.iter().map(|g| *g as usize).collect();
    todo.push(0);
    while let Some(gid) = todo.pop() {
        if gid >= num_glyphs || !kept.insert(gid) {
            continue;
        }
        let (start, end) = glyph_range(gid)?;
        if end <= start {
            continue;
        }
        let g = glyf.get(start..end).context("glyph out of range")?;
        let contours = i16::from_be_bytes([g[0], g[1]]);
        if contours >= 0 {
            continue;
        }
        let mut at = 10;
        loop {
            let flags = be_u16(g, at)?;
            todo.push(be_u16(g, at + 2)? as usize);
            at += 4;
            at += if flags & 0x0001 != 0 { 4 } else { 2 };
            if flags & 0x0008 != 0 {
                at += 2;
            } else if flags & 0x0040 != 0 {
                at += 4;
            } else if flags & 0x0080 != 0 {
                at += 8;
            }
            if flags & 0x0020 == 0 {
                break;
            }
        }
    }

    let mut new_glyf = Vec::new();
    let mut new_loca = Vec::with_capacity((num_glyphs + 1) * 4);
    for gid in 0..num_glyphs {
        new_loca.extend_from_slice(&u32::try_from(new_glyf.len())?.to_be_bytes());
        if kept.contains(&gid) {
            let (start, end) = glyph_range(gid)?;
            if end > start {
                new_glyf.extend_from_slice(glyf.get(start..end).context("glyph out of range")?);
                while new_glyf.len() % 4 != 0 {
                    new_glyf.push(0);
                }
            }
        }
    }
    new_loca.extend_from_slice(&u32::try_from(new_glyf.len())?.to_be_bytes());
    let mut new_head = head.to_vec();
    new_head[8..12].copy_from_slice(&[0, 0, 0, 0]);
    new_head[50..52].copy_from_slice(&1u16.to_be_bytes());

    let mut out_tables: BTreeMap<[u8; 4], Vec<u8>> = BTreeMap::new();
    out_tables.insert(*b"head", new_head);
    out_tables.insert(*b"loca", new_loca);
    out_tables.insert(*b"glyf", new_glyf);
    for tag in [b"hhea", b"hmtx", b"maxp", b"cvt ", b"fpgm", b"prep", b"OS/2"] {
        if let Some(t) = tables.get(tag) {
            out_tables.insert(*tag, t.to_vec());
        }
    }

    let n = out_tables.len();
    let mut search = 1usize;
    let mut selector = 0u16;
    while search * 2 <= n {
        search *= 2;
        selector += 1;
    }
    let mut out = Vec::new();
    out.extend_from_slice(&0x0001_0000u32.to_be_bytes());
    out.extend_from_slice(&u16::try_from(n)?.to_be_bytes());
    out.extend_from_slice(&u16::try_from(search * 16)?.to_be_bytes());
    out.extend_from_slice(&selector.to_be_bytes());
    out.extend_from_slice(&u16::try_from(n * 16 - search * 16)?.to_be_bytes());
    let mut offset = 12 + 16 * n;
    let mut body = Vec::new();
    let mut head_at = 0;
    for (tag, bytes) in &out_tables {
        out.extend_from_slice(tag);
        out.extend_from_slice(&checksum(bytes).to_be_bytes());
        out.extend_from_slice(&u32::try_from(offset)?.to_be_bytes());
        out.extend_from_slice(&u32::try_from(bytes.len())?.to_be_bytes());
        if tag == b"head" {
            head_at = offset;
        }
        body.extend_from_slice(bytes);
        while body.len() % 4 != 0 {
            body.push(0);
        }
        offset = 12 + 16 * n + body.len();
    }
    out.extend_from_slice(&body);
    let adjust = 0xB1B0_AFBAu32.wrapping_sub(checksum(&out));
    out[head_at + 8..head_at + 12].copy_from_slice(&adjust.to_be_bytes());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subset_keeps_the_used_glyphs_and_parses_again() {
        let face = ttf_parser::Face::parse(FONT, 0).expect("font");
        let keep: BTreeSet<u16> = "客户名称ABC123"
            .chars()
            .filter_map(|c| face.glyph_index(c))
            .map(|g| g.0)
            .collect();
        let subset = subset_truetype(FONT, 0, &keep).expect("subset");
        assert!(subset.len() < FONT.len() / 4, "subset is {} bytes", subset.len());
        let sub = ttf_parser::Face::parse(&subset, 0).expect("subset parses");
        let gid = face.glyph_index('客').expect("glyph");
        assert!(sub.outline_glyph(gid, &mut Sink).is_some());
        let dropped = face.glyph_index('龍').expect("glyph");
        assert!(sub.outline_glyph(dropped, &mut Sink).is_none());
    }

    #[test]
    fn a_long_table_continues_on_new_pages_with_the_header() {
        let dir = std::env::var("GUANXI_KEEP_EXPORTS")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|_| std::env::temp_dir());
        let path = dir.join(format!("guanxi-pdf-test-{}.pdf", std::process::id()));
        let mut w: Box<dyn TableWriter> = Box::new(PdfWriter::create(&path, "客户 导出", "测试").expect("create"));
        w.header(&["客户名称".into(), "城市".into(), "备注".into()])
            .expect("header");
        for i in 0..100 {
            let remark = "很长的备注文字，超出列宽时以省略号结尾。".repeat(i % 4 + 1);
            w.row(&[
                Cell::Text(format!("北京客户{i:03}")),
                Cell::Text("北京".into()),
                Cell::Text(remark),
            ])
            .expect("row");
        }
        w.finish().expect("finish");
        let pdf = std::fs::read(&path).expect("read");
        let text = String::from_utf8_lossy(&pdf);
        // 32 rows a page: the page tree counts four pages, each with the header row.
        assert!(text.contains("/Count 4"), "100 rows take four pages");
        if std::env::var("GUANXI_KEEP_EXPORTS").is_err() {
            let _ = std::fs::remove_file(&path);
        }
    }

    struct Sink;
    impl ttf_parser::OutlineBuilder for Sink {
        fn move_to(&mut self, _: f32, _: f32) {}
        fn line_to(&mut self, _: f32, _: f32) {}
        fn quad_to(&mut self, _: f32, _: f32, _: f32, _: f32) {}
        fn curve_to(&mut self, _: f32, _: f32, _: f32, _: f32, _: f32, _: f32) {}
        fn close(&mut self) {}
    }
}
