import { describe, expect, it } from 'vitest';
import { ApiError } from '../api';
import { errorText } from './ui';

describe('errorText', () => {
  it("shows an API error's own words", () => {
    expect(errorText(new ApiError(409, 'a user with this email exists'))).toBe('a user with this email exists');
  });
  it('never shows an empty message', () => {
    expect(errorText(new Error('boom'))).toBe('Something went wrong: boom');
    expect(errorText(new Error(''))).toBe('Something went wrong.');
    expect(errorText('a string')).toBe('Something went wrong.');
  });
});
