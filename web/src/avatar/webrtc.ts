// The avatar over WebRTC, prepared ahead: the peer connection, its transceivers and data channel
// are made and its ICE candidates gathered before Connect is clicked (or while the socket opens),
// so `session.avatar.connect` can go out the moment the session is configured.

/** The speaking edges the avatar's data channel announces. */
export type Speaking = 'speaking' | 'idle';

/** A peer connection with its offer made and candidates gathered. */
export class AvatarPeer {
  readonly pc: RTCPeerConnection;
  /** The offer as `session.avatar.connect` takes it: base64 of the JSON description. */
  readonly offer: Promise<string>;
  /** The stream of the avatar's video and audio tracks. */
  readonly stream = new MediaStream();
  /** Called on each speaking edge of the data channel. */
  onSpeaking: (s: Speaking) => void = () => {};
  /** Called when the connection fails or closes after having worked. */
  onFailed: (why: string) => void = () => {};
  /** The ICE servers it was made with (a peer for other servers is made afresh). */
  readonly iceKey: string;

  constructor(iceServers: RTCIceServer[], gatherMs = 3000) {
    this.iceKey = JSON.stringify(iceServers);
    const pc = new RTCPeerConnection({ iceServers });
    this.pc = pc;
    this.pc.ontrack = (e) => this.stream.addTrack(e.track);
    this.pc.ondatachannel = (e) => this.listen(e.channel);
    this.pc.onconnectionstatechange = () => {
      if (this.pc.connectionState === 'failed') this.onFailed('the WebRTC connection failed (UDP blocked?)');
    };
    // As the Voice Live samples offer: both transceivers sendrecv and a data channel.
    this.pc.addTransceiver('video', { direction: 'sendrecv' });
    this.pc.addTransceiver('audio', { direction: 'sendrecv' });
    this.listen(this.pc.createDataChannel('eventChannel'));
    this.offer = (async () => {
      await pc.setLocalDescription(await pc.createOffer());
      await new Promise<void>((resolve) => {
        if (pc.iceGatheringState === 'complete') return resolve();
        pc.addEventListener('icegatheringstatechange', () => {
          if (pc.iceGatheringState === 'complete') resolve();
        });
        setTimeout(resolve, gatherMs);
      });
      return btoa(JSON.stringify(pc.localDescription));
    })();
  }

  /** Applies the server's answer (`server_sdp` of `session.avatar.connecting`). */
  async accept(serverSdp: string): Promise<void> {
    await this.pc.setRemoteDescription(JSON.parse(atob(serverSdp)));
  }

  /** Closes the connection. */
  close(): void {
    this.pc.onconnectionstatechange = null;
    this.pc.close();
  }

  private listen(channel: RTCDataChannel): void {
    channel.onmessage = (e) => {
      try {
        const kind = JSON.parse(e.data)?.event?.eventType;
        if (kind === 'EVENT_TYPE_SWITCH_TO_SPEAKING') this.onSpeaking('speaking');
        if (kind === 'EVENT_TYPE_SWITCH_TO_IDLE') this.onSpeaking('idle');
      } catch {
        // not an avatar event
      }
    };
  }
}
