/**
 * The files of a tiny tokenizer in the Hugging Face layout (`config.json`,
 * `tokenizer.json`, `tokenizer_config.json`), made here so that the examples
 * and tests need nothing from a hub.
 */

/** The words the tokenizer knows, in id order after `[UNK]`. */
export const WORDS = ["hello", "packice", "shares", "models", "between", "processes"];

/** File name to contents. */
export function tinyTokenizerFiles(): Record<string, string> {
  const vocab: Record<string, number> = { "[UNK]": 0 };
  WORDS.forEach((word, i) => vocab[word] = i + 1);
  return {
    "config.json": JSON.stringify({ model_type: "bert", vocab_size: WORDS.length + 1 }),
    "tokenizer_config.json": JSON.stringify({
      tokenizer_class: "PreTrainedTokenizer",
      unk_token: "[UNK]",
      model_max_length: 128,
    }),
    "tokenizer.json": JSON.stringify({
      version: "1.0",
      truncation: null,
      padding: null,
      added_tokens: [{
        id: 0,
        content: "[UNK]",
        single_word: false,
        lstrip: false,
        rstrip: false,
        normalized: false,
        special: true,
      }],
      normalizer: { type: "Lowercase" },
      pre_tokenizer: { type: "Whitespace" },
      post_processor: null,
      decoder: null,
      model: { type: "WordLevel", vocab, unk_token: "[UNK]" },
    }),
  };
}
