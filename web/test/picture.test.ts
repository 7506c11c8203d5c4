import { describe, expect, it } from 'vitest';
import { MAX_SIDE, fitted } from '../src/ui/picture';

describe('chosen pictures', () => {
  it('are scaled down to fit, keeping their shape, and never up', () => {
    expect(fitted(4000, 3000)).toEqual([MAX_SIDE, 768]);
    expect(fitted(1000, 3000)).toEqual([341, MAX_SIDE]);
    expect(fitted(640, 480)).toEqual([640, 480]);
    expect(fitted(5000, 1)).toEqual([MAX_SIDE, 1]);
  });
});
