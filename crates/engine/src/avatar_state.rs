//! [`AvatarState`]: the session's side of its avatar — checking the configured avatar against
//! what the server offers, asking the driver to connect it, following its connection, and
//! whether speech goes to it.

use crate::avatar_link::{AvatarCommand, AvatarEvent, AvatarFace, AvatarTransport, Link};
use crate::avatar_photo;
use crate::out::Out;
use crate::{Output, seed_of};
use brazen_avatar::Scene;
use brazen_avatar::character::Catalog;
use brazen_protocol::avatar::{AvatarKind, Background, OutputProtocol};
use brazen_protocol::error::code;
use brazen_protocol::{AvatarConfig, ProtocolError, ServerEvent, SessionConfig};
use serde_json::{Value, json};
use std::sync::Arc;

/// The avatar's connection as the session sees it.
pub(crate) struct AvatarState {
    /// The characters the server offers.
    avatars: Arc<Catalog>,
    /// The ICE servers given to avatars that name none.
    ice_servers: Vec<Value>,
    link: Link,
    /// Whether the link (when not off) streams over the session's socket.
    over_websocket: bool,
    /// The scene controls a running photo avatar has (to send changes on).
    scene: Option<Scene>,
}

impl AvatarState {
    /// No avatar yet.
    pub(crate) fn new(avatars: Arc<Catalog>, ice_servers: Vec<Value>) -> Self {
        AvatarState { avatars, ice_servers, link: Link::Off, over_websocket: false, scene: None }
    }

    /// Whether speech goes to the avatar (its connection was answered or started).
    pub(crate) fn is_live(&self) -> bool {
        self.link == Link::Live
    }

    /// Checks an avatar against what this server offers: its character and style (Azure's stock
    /// names are accepted; an unknown one is an error that lists the valid ones), a photo
    /// avatar's portrait, and no Azure custom avatars.
    pub(crate) fn check(&self, avatar: &AvatarConfig) -> Result<(), ProtocolError> {
        if avatar.kind == AvatarKind::Photo {
            avatar_photo::read(avatar, &self.avatars)?;
        }
        if avatar.customized {
            return Err(ProtocolError::invalid(
                code::AVATAR_VERIFICATION_FAILED,
                "Custom Azure avatars are not available here; brazen's characters are data files: add one to the characters folder and name it in 'character'.",
            )
            .with_param("session.avatar.customized"));
        }
        // A photo avatar's character is only a name: its portrait is the picture.
        let Some(character) = avatar.character.as_deref().filter(|_| avatar.kind == AvatarKind::Video) else {
            return Ok(());
        };
        self.avatars.choose(character, avatar.style.as_deref()).map(|_| ()).map_err(|message| {
            let param =
                if message.starts_with("avatar style") { "session.avatar.style" } else { "session.avatar.character" };
            ProtocolError::invalid(code::AVATAR_VERIFICATION_FAILED, message).with_param(param)
        })
    }

    /// `session.avatar.connect`: checks the session can have a WebRTC avatar and asks the
    /// driver to answer the offer.
    pub(crate) fn connect(
        &mut self,
        config: &SessionConfig,
        client_sdp: &str,
        out: &mut Out,
    ) -> Result<(), ProtocolError> {
        let Some(avatar) = &config.avatar else {
            return Err(ProtocolError::invalid(
                code::AVATAR_NOT_CONFIGURED,
                "No avatar is configured: send session.update with an 'avatar' (e.g. {\"character\": \"lisa\"}) and wait for session.updated before session.avatar.connect.",
            ));
        };
        if avatar.output_protocol == OutputProtocol::WebSocket {
            return Err(ProtocolError::invalid(
                code::INVALID_VALUE,
                "This session's avatar streams over the WebSocket ('output_protocol': 'websocket'): its video arrives as response.video.delta, with no session.avatar.connect. Set 'output_protocol' to 'webrtc' to connect over WebRTC.",
            )
            .with_param("session.avatar.output_protocol"));
        }
        if self.link != Link::Off {
            return Err(ProtocolError::invalid(
                code::AVATAR_ALREADY_CONNECTED,
                "The avatar is already connected (or connecting) on this session; open a new session to connect again.",
            ));
        }
        let offer_sdp = crate::avatar_link::read_offer(client_sdp)
            .map_err(|message| ProtocolError::invalid(code::INVALID_VALUE, message).with_param("client_sdp"))?;
        self.start(config, avatar, AvatarTransport::WebRtc { offer_sdp }, out)
    }

    /// Asks the driver to start `avatar` over `transport`.
    fn start(
        &mut self,
        config: &SessionConfig,
        avatar: &AvatarConfig,
        transport: AvatarTransport,
        out: &mut Out,
    ) -> Result<(), ProtocolError> {
        let face = match avatar.kind {
            AvatarKind::Photo => {
                let photo = avatar_photo::read(avatar, &self.avatars)?;
                self.scene = Some(photo.scene);
                AvatarFace::Photo(photo)
            }
            AvatarKind::Video => {
                let character = avatar.character.as_deref().unwrap_or("lisa");
                let chosen = self.avatars.choose(character, avatar.style.as_deref()).map_err(|message| {
                    ProtocolError::invalid(code::AVATAR_VERIFICATION_FAILED, message)
                        .with_param("session.avatar.character")
                })?;
                self.scene = None;
                AvatarFace::Character(chosen.look)
            }
        };
        self.link = Link::Offered;
        self.over_websocket = matches!(transport, AvatarTransport::WebSocket);
        let seed = seed_of(&config.id);
        out.push(Output::Avatar(AvatarCommand::Connect { transport, face, video: avatar.video.clone(), seed }));
        Ok(())
    }

    /// News from the avatar's connection; `turn_id` is the response being played, if any.
    pub(crate) fn on_event(
        &mut self,
        event: AvatarEvent,
        config: &SessionConfig,
        turn_id: Option<String>,
        out: &mut Out,
    ) {
        match event {
            AvatarEvent::Answered(sdp) if self.link == Link::Offered => {
                self.link = Link::Live;
                let server_sdp = crate::avatar_link::encode_answer(&sdp);
                out.emit(ServerEvent::AvatarConnecting { server_sdp });
            }
            AvatarEvent::Started if self.link == Link::Offered => self.link = Link::Live,
            AvatarEvent::PictureFailed { param, message } if self.link != Link::Off => {
                out.error(ProtocolError::invalid(code::INVALID_VALUE, message).with_param(param));
            }
            AvatarEvent::Video(bytes) if self.link == Link::Live => {
                use base64::Engine as _;
                let delta = base64::engine::general_purpose::STANDARD.encode(bytes);
                out.emit(ServerEvent::VideoDelta { delta });
            }
            AvatarEvent::Refused { unsupported, message } if self.link == Link::Offered => {
                self.link = Link::Off;
                let code = if unsupported { code::UNSUPPORTED } else { code::INVALID_VALUE };
                let param = if over_websocket(config) { "session.avatar" } else { "client_sdp" };
                out.error(ProtocolError::invalid(code, message).with_param(param));
            }
            AvatarEvent::Speaking if self.link == Link::Live => out.emit(ServerEvent::AvatarSpeaking { turn_id }),
            AvatarEvent::Idle if self.link == Link::Live => out.emit(ServerEvent::AvatarIdle { turn_id }),
            AvatarEvent::Closed => self.link = Link::Off,
            _ => {}
        }
    }

    /// After a `session.update` was applied to `config`: completes the configured avatar for
    /// `session.updated` — the server's ICE servers when it names none (clients must use those),
    /// and how a transparent background is delivered (`transparency`) — and closes the
    /// connection of an avatar that was removed.
    pub(crate) fn complete(&mut self, config: &mut SessionConfig, out: &mut Out) {
        match config.avatar.as_mut() {
            Some(avatar) => {
                if avatar.ice_servers.is_empty() && !self.ice_servers.is_empty() {
                    avatar.set_ice_servers(self.ice_servers.clone());
                }
                let transparency = match avatar.video.background {
                    Background::Color(c) if c.0[3] < 255 => {
                        let [r, g, b, _] = c.0;
                        Some(match avatar.output_protocol {
                            OutputProtocol::WebSocket => json!({"method": "alpha_below"}),
                            OutputProtocol::WebRtc => {
                                json!({"method": "chroma_key", "key_color": format!("#{r:02X}{g:02X}{b:02X}")})
                            }
                        })
                    }
                    _ => None,
                };
                avatar.set_transparency(transparency);
            }
            None if self.link != Link::Off => {
                self.link = Link::Off;
                out.push(Output::Avatar(AvatarCommand::Close));
            }
            None => {}
        }
    }

    /// After `session.updated` went out: sends a running photo avatar its changed scene
    /// controls, and starts a WebSocket avatar, which needs no handshake — it starts with the
    /// `session.update` that asks for it, replacing a WebRTC link (a client falling back when
    /// WebRTC cannot get through).
    pub(crate) fn follow(&mut self, config: &SessionConfig, out: &mut Out) {
        let Some(avatar) = &config.avatar else { return };
        if let Some(running) = self.scene.filter(|_| self.link != Link::Off)
            && avatar.kind == AvatarKind::Photo
            && avatar.scene != running
        {
            self.scene = Some(avatar.scene);
            out.push(Output::Avatar(AvatarCommand::Scene(avatar.scene)));
        }
        if avatar.output_protocol == OutputProtocol::WebSocket
            && (self.link == Link::Off || !self.over_websocket)
            && let Err(e) = self.start(config, avatar, AvatarTransport::WebSocket, out)
        {
            out.error(e);
        }
    }

    /// Drops the speech the avatar has not played yet.
    pub(crate) fn clear(&self, out: &mut Out) {
        if self.link == Link::Live {
            out.push(Output::Avatar(AvatarCommand::Clear));
        }
    }
}

/// Whether `config`'s avatar streams its video over the session's socket.
fn over_websocket(config: &SessionConfig) -> bool {
    config.avatar.as_ref().is_some_and(|a| a.output_protocol == OutputProtocol::WebSocket)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> (AvatarState, SessionConfig, Out) {
        let avatars = Arc::new(Catalog::built_in());
        (
            AvatarState::new(avatars, vec![json!({"urls": ["stun:127.0.0.1:3478"]})]),
            SessionConfig::new("sess_t", "m"),
            Out::new("t".into()),
        )
    }

    #[test]
    fn connecting_needs_a_configured_avatar() {
        let (mut a, config, mut out) = state();
        let e = a.connect(&config, "v=0", &mut out).unwrap_err();
        assert_eq!(e.code, code::AVATAR_NOT_CONFIGURED);
        assert!(out.drain().is_empty());
    }

    #[test]
    fn a_websocket_avatar_starts_with_the_update_and_a_refusal_turns_it_off() {
        let (mut a, mut config, mut out) = state();
        config.avatar = Some(Box::new(
            AvatarConfig::read(&json!({"character": "lisa", "output_protocol": "websocket"}), "a").unwrap(),
        ));
        a.complete(&mut config, &mut out);
        assert_eq!(
            config.avatar.as_ref().unwrap().to_json()["ice_servers"],
            json!([{"urls": ["stun:127.0.0.1:3478"]}])
        );
        a.follow(&config, &mut out);
        assert!(matches!(
            &out.drain()[..],
            [Output::Avatar(AvatarCommand::Connect { transport: AvatarTransport::WebSocket, .. })]
        ));
        a.on_event(AvatarEvent::Refused { unsupported: true, message: "no".into() }, &config, None, &mut out);
        assert!(
            matches!(&out.drain()[..], [Output::Event(ServerEvent::Error(e))] if e.param.as_deref() == Some("session.avatar"))
        );
        assert!(!a.is_live());
        // Following the same configuration again retries.
        a.follow(&config, &mut out);
        assert_eq!(out.drain().len(), 1);
    }

    #[test]
    fn speech_goes_to_the_avatar_once_it_answered() {
        let (mut a, mut config, mut out) = state();
        config.avatar = Some(Box::new(AvatarConfig::read(&json!({"character": "lisa"}), "a").unwrap()));
        a.connect(&config, "v=0\r\n", &mut out).unwrap();
        assert!(!a.is_live());
        a.on_event(AvatarEvent::Answered("v=0 answer".into()), &config, None, &mut out);
        assert!(a.is_live());
        assert_eq!(a.connect(&config, "v=0\r\n", &mut out).unwrap_err().code, code::AVATAR_ALREADY_CONNECTED);
        // Removing the avatar closes its connection.
        config.avatar = None;
        out.drain();
        a.complete(&mut config, &mut out);
        assert!(matches!(&out.drain()[..], [Output::Avatar(AvatarCommand::Close)]));
    }
}
