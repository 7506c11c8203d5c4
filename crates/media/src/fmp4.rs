//! Fragmented MP4 of the avatar for a browser's MediaSource: H.264 video and AAC-LC audio in one
//! stream, as the Voice Live samples play `response.video.delta`
//! (`video/mp4; codecs="avc1.42E01E, mp4a.40.2"`). The first bytes are the initialisation
//! segment (`ftyp` + `moov`); each fragment after it (`moof` + `mdat`) carries one video frame and
//! the audio frames made with it. Muxing is `shiguredo_mp4`'s (sans-IO); this module turns the
//! encoders' output into its samples: Annex B pictures into length-prefixed NAL units, the SPS
//! and PPS of the first key frame into the `avcC` box, AAC's AudioSpecificConfig into `esds`.

use shiguredo_mp4::boxes::{
    AudioSampleEntryFields, Avc1Box, AvccBox, EsdsBox, Mp4aBox, SampleEntry, VisualSampleEntryFields,
};
use shiguredo_mp4::descriptors::{DecoderConfigDescriptor, DecoderSpecificInfo, EsDescriptor, SlConfigDescriptor};
use shiguredo_mp4::mux::{Fmp4SegmentMuxer, Sample};
use shiguredo_mp4::{FixedPointNumber, TrackKind, Uint};
use std::num::NonZeroU32;

/// The MIME type of the stream, as `MediaSource.addSourceBuffer` takes it (the samples' own).
pub const MIME: &str = "video/mp4; codecs=\"avc1.42E01E, mp4a.40.2\"";

/// One encoded video frame for a fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoSample {
    /// Annex B NAL units, as the H.264 encoder gives them.
    pub annex_b: Vec<u8>,
    /// Its duration, 90 kHz ticks.
    pub duration: u32,
    /// A key frame (SPS, PPS, IDR).
    pub key: bool,
}

/// One AAC access unit for a fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioSample {
    /// The raw access unit.
    pub data: Vec<u8>,
    /// Samples it holds (at the audio rate).
    pub duration: u32,
}

/// Writes the stream: [`Fmp4Writer::fragment`] returns the bytes to append next.
pub struct Fmp4Writer {
    muxer: Fmp4SegmentMuxer,
    size: (u16, u16),
    audio_rate: NonZeroU32,
    audio_entry: SampleEntry,
    video_entry: Option<SampleEntry>,
    started: bool,
}

const VIDEO_TIMESCALE: NonZeroU32 = NonZeroU32::new(90_000).unwrap();

impl Fmp4Writer {
    /// A writer for `size` pictures and AAC-LC audio at `audio_rate` whose decoder configuration
    /// is `audio_config` (the encoder's AudioSpecificConfig).
    pub fn new(size: (u32, u32), audio_rate: u32, audio_config: &[u8]) -> Result<Fmp4Writer, String> {
        let dimension = |v: u32| u16::try_from(v).map_err(|_| format!("a {v}-pixel side does not fit an MP4 track"));
        let audio_rate_nz = NonZeroU32::new(audio_rate).ok_or("the audio rate is 0")?;
        let rate16 =
            u16::try_from(audio_rate).map_err(|_| format!("{audio_rate} Hz does not fit an MP4 sample entry"))?;
        let audio_entry = SampleEntry::Mp4a(Mp4aBox {
            audio: AudioSampleEntryFields {
                data_reference_index: AudioSampleEntryFields::DEFAULT_DATA_REFERENCE_INDEX,
                channelcount: 1,
                samplesize: AudioSampleEntryFields::DEFAULT_SAMPLESIZE,
                samplerate: FixedPointNumber::new(rate16, 0),
            },
            esds_box: EsdsBox {
                es: EsDescriptor {
                    es_id: EsDescriptor::MIN_ES_ID,
                    stream_priority: EsDescriptor::LOWEST_STREAM_PRIORITY,
                    depends_on_es_id: None,
                    url_string: None,
                    ocr_es_id: None,
                    dec_config_descr: DecoderConfigDescriptor {
                        object_type_indication: DecoderConfigDescriptor::OBJECT_TYPE_INDICATION_AUDIO_ISO_IEC_14496_3,
                        stream_type: DecoderConfigDescriptor::STREAM_TYPE_AUDIO,
                        up_stream: DecoderConfigDescriptor::UP_STREAM_FALSE,
                        buffer_size_db: Uint::new(0),
                        max_bitrate: 128_000,
                        avg_bitrate: 64_000,
                        dec_specific_info: Some(DecoderSpecificInfo { payload: audio_config.to_vec() }),
                    },
                    sl_config_descr: SlConfigDescriptor,
                },
            },
            unknown_boxes: Vec::new(),
        });
        Ok(Fmp4Writer {
            muxer: Fmp4SegmentMuxer::new().map_err(|e| format!("cannot start the MP4 muxer: {e}"))?,
            size: (dimension(size.0)?, dimension(size.1)?),
            audio_rate: audio_rate_nz,
            audio_entry,
            video_entry: None,
            started: false,
        })
    }

    /// The bytes that carry `video` and `audio` next: the initialisation segment first, then
    /// fragments. Until the first key frame nothing can be written (the decoder needs its SPS and
    /// PPS); those samples are dropped and the result is empty.
    pub fn fragment(&mut self, video: &[VideoSample], audio: &[AudioSample]) -> Result<Vec<u8>, String> {
        let mut samples = Vec::new();
        let mut payload = Vec::new();
        for v in video {
            if self.video_entry.is_none() {
                if !v.key {
                    continue;
                }
                self.video_entry = Some(self.avc1(&v.annex_b)?);
            }
            let data = length_prefixed(&v.annex_b);
            samples.push(Sample {
                track_kind: TrackKind::Video,
                timescale: VIDEO_TIMESCALE,
                sample_entry: self.video_entry.clone(),
                duration: v.duration,
                keyframe: v.key,
                composition_time_offset: None,
                data_offset: payload.len() as u64,
                data_size: data.len(),
            });
            payload.extend_from_slice(&data);
        }
        if self.video_entry.is_none() {
            return Ok(Vec::new());
        }
        for a in audio {
            samples.push(Sample {
                track_kind: TrackKind::Audio,
                timescale: self.audio_rate,
                sample_entry: Some(self.audio_entry.clone()),
                duration: a.duration,
                keyframe: true,
                composition_time_offset: None,
                data_offset: payload.len() as u64,
                data_size: a.data.len(),
            });
            payload.extend_from_slice(&a.data);
        }
        if samples.is_empty() {
            return Ok(Vec::new());
        }
        let head = self.muxer.create_media_segment_metadata(&samples).map_err(|e| format!("MP4 fragment: {e}"))?;
        let mut out = Vec::with_capacity(head.len() + payload.len() + 1024);
        if !self.started {
            self.started = true;
            out.extend(self.muxer.init_segment_bytes().map_err(|e| format!("MP4 initialisation segment: {e}"))?);
        }
        out.extend(head);
        out.extend(payload);
        Ok(out)
    }

    /// The `avc1` sample entry from a key frame's SPS and PPS.
    fn avc1(&self, annex_b: &[u8]) -> Result<SampleEntry, String> {
        let units: Vec<&[u8]> = nal_units(annex_b).collect();
        let sps: Vec<Vec<u8>> = units.iter().filter(|u| u[0] & 0x1f == 7).map(|u| u.to_vec()).collect();
        let pps: Vec<Vec<u8>> = units.iter().filter(|u| u[0] & 0x1f == 8).map(|u| u.to_vec()).collect();
        let Some(first) = sps.first().filter(|s| s.len() >= 4) else {
            return Err("the key frame carries no SPS".into());
        };
        if pps.is_empty() {
            return Err("the key frame carries no PPS".into());
        }
        Ok(SampleEntry::Avc1(Avc1Box {
            visual: VisualSampleEntryFields {
                data_reference_index: VisualSampleEntryFields::DEFAULT_DATA_REFERENCE_INDEX,
                width: self.size.0,
                height: self.size.1,
                horizresolution: VisualSampleEntryFields::DEFAULT_HORIZRESOLUTION,
                vertresolution: VisualSampleEntryFields::DEFAULT_VERTRESOLUTION,
                frame_count: VisualSampleEntryFields::DEFAULT_FRAME_COUNT,
                compressorname: VisualSampleEntryFields::NULL_COMPRESSORNAME,
                depth: VisualSampleEntryFields::DEFAULT_DEPTH,
            },
            avcc_box: AvccBox {
                avc_profile_indication: first[1],
                profile_compatibility: first[2],
                avc_level_indication: first[3],
                length_size_minus_one: Uint::new(3),
                sps_list: sps,
                pps_list: pps,
                chroma_format: None,
                bit_depth_luma_minus8: None,
                bit_depth_chroma_minus8: None,
                sps_ext_list: Vec::new(),
            },
            unknown_boxes: Vec::new(),
        }))
    }
}

/// The NAL units of an Annex B stream (start codes removed; empty units skipped).
fn nal_units(annex_b: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= annex_b.len() {
        if annex_b[i] == 0 && annex_b[i + 1] == 0 && annex_b[i + 2] == 1 {
            starts.push((i, i + 3));
            i += 3;
        } else {
            i += 1;
        }
    }
    let ends: Vec<usize> = starts
        .iter()
        .skip(1)
        .map(|&(at, _)| if at > 0 && annex_b[at - 1] == 0 { at - 1 } else { at })
        .chain([annex_b.len()])
        .collect();
    starts.into_iter().zip(ends).map(move |((_, from), to)| &annex_b[from..to.max(from)]).filter(|u| !u.is_empty())
}

/// The picture's NAL units with 4-byte lengths instead of start codes (SPS and PPS stay in
/// band, as browsers accept).
fn length_prefixed(annex_b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(annex_b.len() + 16);
    for unit in nal_units(annex_b) {
        out.extend((unit.len() as u32).to_be_bytes());
        out.extend_from_slice(unit);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annex_b_becomes_length_prefixed_units() {
        let stream = [0, 0, 0, 1, 0x67, 1, 2, 3, 0, 0, 1, 0x68, 4, 0, 0, 0, 1, 0x65, 9, 9];
        let units: Vec<&[u8]> = nal_units(&stream).collect();
        assert_eq!(units, [&[0x67, 1, 2, 3][..], &[0x68, 4][..], &[0x65, 9, 9][..]]);
        assert_eq!(length_prefixed(&stream), [0, 0, 0, 4, 0x67, 1, 2, 3, 0, 0, 0, 2, 0x68, 4, 0, 0, 0, 3, 0x65, 9, 9]);
    }
}
