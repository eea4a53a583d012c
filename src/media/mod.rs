//! Uploaded images: the type read from the bytes, decoding bounded before it starts, the
//! EXIF orientation applied, and everything re-encoded so no metadata (EXIF, GPS, XMP,
//! comments) survives, with smaller variants for `srcset`.
//!
//! - Accepted: JPEG, PNG, GIF and WebP, decided by their magic bytes; a file that is cut
//!   short (no JPEG end marker, no PNG IEND, no GIF trailer, a WebP shorter than its RIFF
//!   header says) is refused, since some decoders would fill the missing part with grey.
//! - Bounds: `media.max_bytes` on the file, `media.max_pixels` on width x height read from
//!   the header before any pixel is decoded, sides at most [`MAX_SIDE`], and the decoder's
//!   allocations capped in proportion.
//! - Output: JPEG stays JPEG (quality [`JPEG_QUALITY`]); PNG and still GIF become PNG;
//!   WebP becomes JPEG when opaque and PNG when it has alpha (the pure-Rust WebP encoder is
//!   lossless only, so photos would grow). Variants [`WIDTHS`] wide, only those narrower
//!   than the image (never upscaled).
//! - Animated GIFs stay animated: re-encoded at their own size only (no variants), at most
//!   [`MAX_FRAMES`] frames and `media.max_pixels` pixels over all frames; more is refused.
//!   Animated WebP is refused (no encoder for it here).
//! - Work runs on the blocking pool, [`SLOTS`] image at a time, so a burst of uploads
//!   queues instead of holding many decoded images in memory.

pub mod html;

use std::io::Cursor;
use std::sync::LazyLock;

use image::codecs::gif::{GifDecoder, GifEncoder, Repeat};
use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::PngEncoder;
use image::codecs::webp::WebPDecoder;
use image::imageops::FilterType;
use image::{
    AnimationDecoder, DynamicImage, ExtendedColorType, ImageDecoder, ImageEncoder, ImageFormat,
    ImageReader,
};
use rocket::tokio::sync::Semaphore;
use sha2::{Digest, Sha256};

/// Widths of the resized variants, in pixels.
pub const WIDTHS: [u32; 3] = [480, 960, 1600];
/// Longest side accepted, whatever `media.max_pixels` allows.
pub const MAX_SIDE: u32 = 16_384;
/// Frames an animated GIF may have.
pub const MAX_FRAMES: usize = 300;
pub const JPEG_QUALITY: u8 = 82;
/// Images processed at once.
pub const SLOTS: usize = 1;

static SLOTS_SEM: LazyLock<Semaphore> = LazyLock::new(|| Semaphore::new(SLOTS));

/// The bounds of one upload (`media.max_bytes`, `media.max_pixels`).
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    pub max_bytes: u64,
    pub max_pixels: u64,
}

/// Why an upload was refused; each message is shown on the page that sent it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("Choose an image file to upload.")]
    Empty,
    #[error("This file is over the limit of {}.", human_bytes(*.0))]
    TooLarge(u64),
    #[error(
        "This file is not a JPEG, PNG, GIF or WebP image (the type is read from the file's \
         contents, not its name)."
    )]
    NotAnImage,
    #[error("This image file is incomplete (cut short); upload the whole file.")]
    Truncated,
    #[error(
        "This image is {0} x {1} pixels; at most {max} megapixels and {MAX_SIDE} pixels a \
         side are accepted.", max = .2 / 1_000_000
    )]
    TooManyPixels(u32, u32, u64),
    #[error(
        "Animated WebP images are not accepted; upload it as an animated GIF or a still image."
    )]
    AnimatedWebp,
    #[error(
        "This animated GIF is too long: at most {MAX_FRAMES} frames and {} megapixels over \
         all frames are accepted.", .0 / 1_000_000
    )]
    TooManyFrames(u64),
    #[error("This image could not be read (it is damaged or uses an unsupported variant).")]
    Unreadable,
    #[error("The server could not process this image; try again in a moment.")]
    Failed,
}

impl Refusal {
    pub fn status(&self) -> rocket::http::Status {
        use rocket::http::Status;
        match self {
            Refusal::TooLarge(_) => Status::PayloadTooLarge,
            Refusal::NotAnImage | Refusal::AnimatedWebp => Status::UnsupportedMediaType,
            Refusal::Failed => Status::ServiceUnavailable,
            Refusal::Empty => Status::BadRequest,
            _ => Status::UnprocessableEntity,
        }
    }
}

/// "20 MiB", "512 KiB", "300 bytes".
pub fn human_bytes(n: u64) -> String {
    if n >= 1 << 20 {
        let mib = n as f64 / (1u64 << 20) as f64;
        if n.is_multiple_of(1 << 20) {
            format!("{} MiB", n >> 20)
        } else {
            format!("{mib:.1} MiB")
        }
    } else if n >= 1 << 10 {
        format!("{} KiB", n.div_ceil(1 << 10))
    } else {
        format!("{n} bytes")
    }
}

/// One stored file: the full-size image or a variant.
#[derive(Debug, Clone)]
pub struct File {
    /// The name in its URL, `/media/<id>/<name>`: a hash of the bytes, the width and the
    /// extension, so the URL changes whenever the content does.
    pub name: String,
    pub content_type: &'static str,
    pub width: u32,
    pub height: u32,
    /// The strong ETag, quoted: the SHA-256 of the bytes.
    pub etag: String,
    pub bytes: Vec<u8>,
}

/// An upload ready to store: the full-size file first, then the variants, widest first.
#[derive(Debug, Clone)]
pub struct Processed {
    pub files: Vec<File>,
    pub animated: bool,
}

impl Processed {
    pub fn full(&self) -> &File {
        &self.files[0]
    }
}

/// Checks, decodes and re-encodes an upload within `bounds`, on the blocking pool,
/// waiting for a free slot. Errors: the refusal to show; `Failed` if processing panicked.
pub async fn process(bytes: Vec<u8>, bounds: Bounds) -> Result<Processed, Refusal> {
    check_size(&bytes, bounds)?;
    let _permit = SLOTS_SEM.acquire().await.map_err(|_| Refusal::Failed)?;
    let task = rocket::tokio::task::spawn_blocking(move || process_blocking(&bytes, bounds));
    match task.await {
        Ok(result) => result,
        Err(e) => {
            log::error!("processing an upload failed: {e}");
            Err(Refusal::Failed)
        }
    }
}

fn check_size(bytes: &[u8], bounds: Bounds) -> Result<(), Refusal> {
    if bytes.is_empty() {
        return Err(Refusal::Empty);
    }
    if bytes.len() as u64 > bounds.max_bytes {
        return Err(Refusal::TooLarge(bounds.max_bytes));
    }
    Ok(())
}

/// The format the bytes say they are, among the four accepted.
pub fn sniff(bytes: &[u8]) -> Result<ImageFormat, Refusal> {
    match image::guess_format(bytes) {
        Ok(f @ (ImageFormat::Jpeg | ImageFormat::Png | ImageFormat::Gif | ImageFormat::WebP)) => {
            Ok(f)
        }
        _ => Err(Refusal::NotAnImage),
    }
}

/// Whether the file ends where its format says it does.
fn is_complete(bytes: &[u8], format: ImageFormat) -> bool {
    // Some tools pad files with zeros (or a newline) after the end; that is no damage.
    let end = bytes
        .iter()
        .rposition(|&b| b != 0 && b != b'\n' && b != b'\r')
        .map_or(0, |i| i + 1);
    let trimmed = &bytes[..end];
    match format {
        // The end marker after the first scan: scan data never holds FF D9 (an FF there
        // is followed by 00 or a restart marker), and phones that append a video after
        // the image ("motion photos") still end the image with it.
        ImageFormat::Jpeg => bytes
            .windows(2)
            .position(|w| w == [0xFF, 0xDA])
            .is_some_and(|sos| bytes[sos + 2..].windows(2).any(|w| w == [0xFF, 0xD9])),
        ImageFormat::Png => trimmed.ends_with(&[0x49, 0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82]),
        ImageFormat::Gif => trimmed.ends_with(&[0x3B]),
        ImageFormat::WebP => {
            bytes.len() >= 12
                && u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]) as usize + 8
                    <= bytes.len()
        }
        _ => false,
    }
}

fn image_limits(bounds: Bounds) -> image::Limits {
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    // RGBA with 16 bits a channel, plus room for the decoder's own buffers.
    limits.max_alloc = Some(bounds.max_pixels.saturating_mul(8) + (64 << 20));
    limits
}

fn check_pixels(width: u32, height: u32, bounds: Bounds) -> Result<(), Refusal> {
    if width == 0
        || height == 0
        || width > MAX_SIDE
        || height > MAX_SIDE
        || u64::from(width) * u64::from(height) > bounds.max_pixels
    {
        return Err(Refusal::TooManyPixels(width, height, bounds.max_pixels));
    }
    Ok(())
}

/// The width and height a header declares, before any decoding: read by the decoder's
/// own header parser with no size limit, so an oversized image gets its real numbers in
/// the message instead of a generic error.
fn declared_size(bytes: &[u8], format: ImageFormat) -> Result<(u32, u32), Refusal> {
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = image::Limits::no_limits();
    limits.max_alloc = Some(64 << 20);
    reader.limits(limits);
    reader
        .into_decoder()
        .map(|d| d.dimensions())
        .map_err(|_| Refusal::Unreadable)
}

/// Checks a file stored earlier (an export read back by `quire import quire`) within
/// `bounds` as an upload is checked: its type from the bytes, whole, its declared size,
/// and its first frame decoded under the same limits. Returns the content type and size;
/// the bytes themselves are stored as they are, since they are quire's own output.
pub fn validate(bytes: &[u8], bounds: Bounds) -> Result<(&'static str, u32, u32), Refusal> {
    check_size(bytes, bounds)?;
    let format = sniff(bytes)?;
    if !is_complete(bytes, format) {
        return Err(Refusal::Truncated);
    }
    let (w, h) = declared_size(bytes, format)?;
    check_pixels(w, h, bounds)?;
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    reader.limits(image_limits(bounds));
    let decoder = reader.into_decoder().map_err(|_| Refusal::Unreadable)?;
    DynamicImage::from_decoder(decoder).map_err(decode_refusal)?;
    let content_type = match format {
        ImageFormat::Jpeg => "image/jpeg",
        ImageFormat::Png => "image/png",
        ImageFormat::Gif => "image/gif",
        _ => "image/webp",
    };
    Ok((content_type, w, h))
}

fn process_blocking(bytes: &[u8], bounds: Bounds) -> Result<Processed, Refusal> {
    check_size(bytes, bounds)?;
    let format = sniff(bytes)?;
    if !is_complete(bytes, format) {
        return Err(Refusal::Truncated);
    }
    let (w, h) = declared_size(bytes, format)?;
    check_pixels(w, h, bounds)?;
    if format == ImageFormat::WebP {
        let dec = WebPDecoder::new(Cursor::new(bytes)).map_err(|_| Refusal::Unreadable)?;
        if dec.has_animation() {
            return Err(Refusal::AnimatedWebp);
        }
    }
    if format == ImageFormat::Gif {
        // GIFs are decoded frame by frame; a GIF of one frame is a still image, PNG.
        return match gif_frames(bytes, w, h, bounds)? {
            Gif::Animated(processed) => Ok(processed),
            Gif::Still(img) => still(&img, false, None),
        };
    }
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    reader.limits(image_limits(bounds));
    let mut decoder = reader.into_decoder().map_err(|_| Refusal::Unreadable)?;
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    // The colour profile is no personal data and keeps wide-gamut photos' colours.
    let icc = decoder.icc_profile().ok().flatten();
    let mut img = DynamicImage::from_decoder(decoder).map_err(decode_refusal)?;
    img.apply_orientation(orientation);
    let as_jpeg = match format {
        ImageFormat::Jpeg => true,
        ImageFormat::WebP => !img.color().has_alpha(),
        _ => false,
    };
    still(&img, as_jpeg, icc)
}

/// A still image re-encoded at full size and at each narrower width of [`WIDTHS`].
fn still(img: &DynamicImage, as_jpeg: bool, icc: Option<Vec<u8>>) -> Result<Processed, Refusal> {
    let mut files = vec![encode(img, as_jpeg, icc.clone())?];
    for &width in WIDTHS.iter().rev() {
        if width >= img.width() {
            continue;
        }
        let height = scaled_height(img.width(), img.height(), width);
        let small = img.resize_exact(width, height, FilterType::Triangle);
        files.push(encode(&small, as_jpeg, icc.clone())?);
    }
    Ok(Processed {
        files,
        animated: false,
    })
}

/// A decoder's failure once the header was read and the bounds checked: damaged data,
/// or an allocation over the limits (both "could not be read" to the uploader).
fn decode_refusal(e: image::ImageError) -> Refusal {
    log::info!("an upload could not be decoded: {e}");
    Refusal::Unreadable
}

fn scaled_height(width: u32, height: u32, to: u32) -> u32 {
    ((u64::from(height) * u64::from(to) + u64::from(width) / 2) / u64::from(width)).max(1) as u32
}

fn encode(img: &DynamicImage, as_jpeg: bool, icc: Option<Vec<u8>>) -> Result<File, Refusal> {
    let mut out = Vec::new();
    let (w, h) = (img.width(), img.height());
    let failed = |e: image::ImageError| {
        log::error!("encoding an upload failed: {e}");
        Refusal::Failed
    };
    let content_type = if as_jpeg {
        let rgb = if img.color().has_color() {
            DynamicImage::ImageRgb8(img.to_rgb8())
        } else {
            DynamicImage::ImageLuma8(img.to_luma8())
        };
        let mut enc = JpegEncoder::new_with_quality(&mut out, JPEG_QUALITY);
        if let Some(icc) = icc {
            let _ = enc.set_icc_profile(icc);
        }
        enc.write_image(rgb.as_bytes(), w, h, ExtendedColorType::from(rgb.color()))
            .map_err(failed)?;
        "image/jpeg"
    } else {
        // 8 bits a channel: 16-bit PNGs are rare on the web and twice the size.
        // Alpha only when some pixel uses it (GIF frames always come as RGBA).
        let transparent = img.color().has_alpha() && img.to_rgba8().pixels().any(|p| p[3] < 255);
        let img = if transparent {
            DynamicImage::ImageRgba8(img.to_rgba8())
        } else {
            DynamicImage::ImageRgb8(img.to_rgb8())
        };
        let mut enc = PngEncoder::new(&mut out);
        if let Some(icc) = icc {
            let _ = enc.set_icc_profile(icc);
        }
        enc.write_image(img.as_bytes(), w, h, ExtendedColorType::from(img.color()))
            .map_err(failed)?;
        "image/png"
    };
    Ok(file(out, content_type, w, h))
}

fn file(bytes: Vec<u8>, content_type: &'static str, width: u32, height: u32) -> File {
    let digest = hex::encode(Sha256::digest(&bytes));
    let ext = match content_type {
        "image/jpeg" => "jpg",
        "image/gif" => "gif",
        _ => "png",
    };
    File {
        name: format!("{}-{width}.{ext}", &digest[..16]),
        content_type,
        width,
        height,
        etag: format!("\"{digest}\""),
        bytes,
    }
}

enum Gif {
    Animated(Processed),
    Still(DynamicImage),
}

/// A GIF decoded once, frame by frame: an animated one re-encoded (which drops its
/// comment and application extensions), or its only frame.
fn gif_frames(bytes: &[u8], width: u32, height: u32, bounds: Bounds) -> Result<Gif, Refusal> {
    let mut decoder = GifDecoder::new(Cursor::new(bytes)).map_err(|_| Refusal::Unreadable)?;
    decoder
        .set_limits(image_limits(bounds))
        .map_err(|_| Refusal::Unreadable)?;
    let frame_pixels = u64::from(width) * u64::from(height);
    let mut frames = Vec::new();
    for frame in decoder.into_frames() {
        let frame = frame.map_err(decode_refusal)?;
        frames.push(frame);
        // Frames are held decoded (full-canvas RGBA): bound their number and their total.
        let total = frames.len() as u64 * frame_pixels;
        if frames.len() > MAX_FRAMES || total > bounds.max_pixels {
            return Err(Refusal::TooManyFrames(bounds.max_pixels));
        }
    }
    if frames.len() <= 1 {
        let frame = frames.pop().ok_or(Refusal::Unreadable)?;
        return Ok(Gif::Still(DynamicImage::ImageRgba8(frame.into_buffer())));
    }
    let mut out = Vec::new();
    {
        // Speed 10: the default (1) spends seconds per frame on quantization.
        let mut enc = GifEncoder::new_with_speed(&mut out, 10);
        let failed = |e: image::ImageError| {
            log::error!("encoding an animated upload failed: {e}");
            Refusal::Failed
        };
        enc.set_repeat(Repeat::Infinite).map_err(failed)?;
        enc.encode_frames(frames).map_err(failed)?;
    }
    Ok(Gif::Animated(Processed {
        files: vec![file(out, "image/gif", width, height)],
        animated: true,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_files_are_incomplete() {
        let mut png = Vec::new();
        DynamicImage::new_rgb8(4, 4)
            .write_to(&mut Cursor::new(&mut png), ImageFormat::Png)
            .unwrap();
        assert!(is_complete(&png, ImageFormat::Png));
        assert!(!is_complete(&png[..png.len() - 10], ImageFormat::Png));
        let mut jpg = Vec::new();
        DynamicImage::new_rgb8(4, 4)
            .write_to(&mut Cursor::new(&mut jpg), ImageFormat::Jpeg)
            .unwrap();
        assert!(is_complete(&jpg, ImageFormat::Jpeg));
        assert!(!is_complete(&jpg[..jpg.len() - 20], ImageFormat::Jpeg));
        let mut motion = jpg.clone();
        motion.extend_from_slice(b"....ftypmp42 a video follows");
        assert!(is_complete(&motion, ImageFormat::Jpeg));
    }

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(human_bytes(20 << 20), "20 MiB");
        assert_eq!(human_bytes(1536), "2 KiB");
        assert_eq!(human_bytes(12), "12 bytes");
        assert_eq!(scaled_height(4000, 3000, 480), 360);
    }
}
