//! The talking avatar, without I/O.
//!
//! - [`viseme`]: IPA phonemes → Azure viseme ids 0–21 and the 15 Oculus visemes.
//! - [`blendshape`]: the 55 blendshape values of Azure's frames (ARKit's 52 in Azure's order,
//!   then head and eye roll) and the mouth pose of each viseme.
//! - [`character`]: characters as data (TOML), the built-in ones, Azure's stock names.
//! - [`render`]: a character drawn with tiny-skia, posed by a blendshape frame.
//! - [`timeline`]: a response's lip-sync on its audio clock: viseme events, and blendshape
//!   frames at 60 fps with co-articulation and idle motion ([`idle`]).

pub mod backdrop;
pub mod blendshape;
pub mod character;
pub mod idle;
pub mod photo;
pub mod render;
pub mod timeline;
pub mod viseme;

pub use backdrop::Backdrop;
pub use photo::{MouthSpot, PhotoRenderer, Scene};
pub use render::Renderer;
pub use timeline::{LipSync, Phone, VisemeEvent};
