import { z } from 'zod'

/** The most tags one piece of content may carry. */
export const MAX_TAGS = 32

/** A content tag: lowercase, starts with a letter or digit, at most 64 characters. */
export const TagSchema = z
  .string()
  .regex(/^[a-z0-9][a-z0-9:_-]{0,63}$/, 'a tag is lowercase [a-z0-9][a-z0-9:_-]{0,63}')

/** The tags on one piece of content. */
export const TagsSchema = z.array(TagSchema).max(MAX_TAGS)

/** Sorted, without duplicates: the form tags are stored and signed in. */
export function normalizeTags(tags: readonly string[]): string[] {
  return [...new Set(tags)].sort()
}
