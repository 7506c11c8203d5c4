// A transparent avatar drawn over the page: the video's key colour (WebRTC) or its alpha picture
// below the colour picture (WebSocket) turned into real transparency by a WebGL shader.

/** How the server made the background transparent (`session.updated` → `avatar.transparency`). */
export type Transparency = { method: 'chroma_key'; key_color: string } | { method: 'alpha_below' };

const VERTEX = `attribute vec2 p; varying vec2 uv;
void main() { uv = vec2((p.x + 1.0) / 2.0, (1.0 - p.y) / 2.0); gl_Position = vec4(p, 0.0, 1.0); }`;

const FRAGMENT = `precision mediump float; varying vec2 uv; uniform sampler2D frame;
uniform int mode; uniform vec3 key; uniform vec3 spill;
void main() {
  if (mode == 1) {
    vec3 c = texture2D(frame, vec2(uv.x, uv.y * 0.5)).rgb;
    float a = texture2D(frame, vec2(uv.x, 0.5 + uv.y * 0.5)).r;
    gl_FragColor = vec4(c * a, a);
  } else {
    vec3 c = texture2D(frame, uv).rgb;
    float d = distance(c, key);
    float a = smoothstep(0.18, 0.32, d);
    // Near the key, its dominant channel (\`spill\`) is held to the others' level: no coloured fringe.
    if (d < 0.5) {
      float held = min(dot(c, spill), max(max(c.r * (1.0 - spill.r), c.g * (1.0 - spill.g)), c.b * (1.0 - spill.b)));
      c = c - spill * (dot(c, spill) - held);
    }
    gl_FragColor = vec4(c * a, a);
  }
}`;

/** Draws `video` onto `canvas` with its background made transparent, frame by frame. */
export class Compositor {
  private raf = 0;

  constructor(video: HTMLVideoElement, canvas: HTMLCanvasElement, transparency: Transparency) {
    const gl = canvas.getContext('webgl', { premultipliedAlpha: true, alpha: true, preserveDrawingBuffer: true });
    if (!gl) throw new Error('WebGL is not available');
    const shader = (type: number, src: string) => {
      const s = gl.createShader(type)!;
      gl.shaderSource(s, src);
      gl.compileShader(s);
      return s;
    };
    const program = gl.createProgram()!;
    gl.attachShader(program, shader(gl.VERTEX_SHADER, VERTEX));
    gl.attachShader(program, shader(gl.FRAGMENT_SHADER, FRAGMENT));
    gl.linkProgram(program);
    gl.useProgram(program);
    gl.bindBuffer(gl.ARRAY_BUFFER, gl.createBuffer());
    gl.bufferData(gl.ARRAY_BUFFER, new Float32Array([-1, -1, 1, -1, -1, 1, 1, 1]), gl.STATIC_DRAW);
    const p = gl.getAttribLocation(program, 'p');
    gl.enableVertexAttribArray(p);
    gl.vertexAttribPointer(p, 2, gl.FLOAT, false, 0, 0);
    gl.bindTexture(gl.TEXTURE_2D, gl.createTexture());
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_WRAP_S, gl.CLAMP_TO_EDGE);
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_WRAP_T, gl.CLAMP_TO_EDGE);
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MIN_FILTER, gl.LINEAR);
    gl.uniform1i(gl.getUniformLocation(program, 'mode'), transparency.method === 'alpha_below' ? 1 : 0);
    const hex = transparency.method === 'chroma_key' ? transparency.key_color : '#000000';
    const rgb = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16) / 255);
    gl.uniform3f(gl.getUniformLocation(program, 'key'), rgb[0], rgb[1], rgb[2]);
    const top = rgb.indexOf(Math.max(...rgb));
    gl.uniform3f(gl.getUniformLocation(program, 'spill'), top === 0 ? 1 : 0, top === 1 ? 1 : 0, top === 2 ? 1 : 0);
    const alphaBelow = transparency.method === 'alpha_below';
    const tick = () => {
      this.raf = requestAnimationFrame(tick);
      const w = video.videoWidth;
      const h = alphaBelow ? video.videoHeight / 2 : video.videoHeight;
      if (!w || !h || video.readyState < 2) return;
      if (canvas.width !== w || canvas.height !== h) {
        canvas.width = w;
        canvas.height = h;
        gl.viewport(0, 0, w, h);
      }
      gl.texImage2D(gl.TEXTURE_2D, 0, gl.RGB, gl.RGB, gl.UNSIGNED_BYTE, video);
      gl.drawArrays(gl.TRIANGLE_STRIP, 0, 4);
    };
    this.raf = requestAnimationFrame(tick);
  }

  /** Stops drawing (the canvas keeps its context for the next compositor). */
  close(): void {
    cancelAnimationFrame(this.raf);
  }
}
