using System.Text;
using System.Text.Json;
using Microsoft.ML.Tokenizers;

namespace Pip.Tokenization;

/// <summary>
/// A Hugging Face BPE tokenizer (<c>tokenizer.json</c> + <c>tokenizer_config.json</c>) whose BPE merging runs in
/// Microsoft.ML.Tokenizers' <see cref="BpeTokenizer"/>.
/// </summary>
/// <remarks>
/// <para>
/// Two families load: byte-level BPE as GPT-2, Llama 3 and Qwen2 write it (a <c>ByteLevel</c> pre-tokenizer, alone or
/// after a <c>Split</c> regex; <c>ByteLevel</c> decoder), and SentencePiece-style BPE as Llama 2, Mistral and TinyLlama
/// write it (<c>byte_fallback</c>, <c>▁</c> for spaces through a <c>Prepend</c>+<c>Replace</c> normalizer or a
/// <c>Metaspace</c> pre-tokenizer; <c>Replace</c>/<c>ByteFallback</c>/<c>Fuse</c>/<c>Strip</c> or <c>Metaspace</c>
/// decoder). Anything else (WordPiece, Unigram, WordLevel models; other normalizers, pre-tokenizers or decoders) is
/// refused with an <see cref="InvalidDataException"/> that names the file and the item.
/// </para>
/// <para>
/// The pipeline follows Hugging Face <c>tokenizers</c>: added tokens are cut out of the raw text first (leftmost
/// longest); each remaining segment is normalized and pre-tokenized on its own; each word is merged by
/// <see cref="BpeTokenizer"/> (with <c>ignore_merges</c> handled here, as the library lacks it). A word with a
/// character outside the vocabulary is merged here, as Hugging Face's <c>BPE::merge_word</c> does: the character becomes
/// its <c>&lt;0xNN&gt;</c> tokens with <c>byte_fallback</c>, else <c>unk_token</c> (fused with <c>fuse_unk</c>), else
/// it is dropped and its neighbours may merge across it. Known differences: .NET regexes see characters outside the Basic Multilingual Plane as two surrogates, so a
/// <c>\p{L}</c> in a split pattern does not match such a letter (it is split as a symbol); <c>Lowercase</c> uses
/// .NET's invariant simple case mapping; transformers' <c>clean_up_tokenization_spaces</c> is not applied by
/// <see cref="Decode(IEnumerable{int})"/>.
/// </para>
/// <para>Instances are immutable and safe to use from several threads.</para>
/// </remarks>
public sealed class HfTokenizer
{
    private readonly BpeTokenizer _bpe;
    private readonly Dictionary<string, int> _vocab;
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _vocabSpan;
    private readonly Dictionary<string, int> _tokenToId;
    private readonly Dictionary<int, string> _idToToken;
    private readonly HashSet<int> _specialIds;
    private readonly AddedTokenSplitter _rawSplitter;
    private readonly AddedTokenSplitter _normalizedSplitter;
    private readonly HfNormalizer? _normalizer;
    private readonly HfPreTokenizer _preTokenizer;
    private readonly HfDecoder _decoder;
    private readonly bool _ignoreMerges;
    private readonly bool _byteFallback;
    private readonly int? _unkId;
    private readonly bool _fuseUnk;
    private readonly int[]? _byteTokenIds;
    private readonly string? _prefix;
    private readonly string? _suffix;
    private readonly Dictionary<(int Left, int Right), (int Rank, int Merged)> _mergeRanks;

    private HfTokenizer(Parts p)
    {
        _bpe = p.Bpe;
        _vocab = p.Vocab;
        _vocabSpan = _vocab.GetAlternateLookup<ReadOnlySpan<char>>();
        _tokenToId = p.TokenToId;
        _idToToken = p.IdToToken;
        _specialIds = p.SpecialIds;
        _rawSplitter = p.RawSplitter;
        _normalizedSplitter = p.NormalizedSplitter;
        _normalizer = p.Normalizer;
        _preTokenizer = p.PreTokenizer;
        _decoder = p.Decoder;
        _ignoreMerges = p.IgnoreMerges;
        _byteFallback = p.ByteFallback;
        _unkId = p.UnkId;
        _fuseUnk = p.FuseUnk;
        _byteTokenIds = p.ByteTokenIds;
        _prefix = p.Prefix;
        _suffix = p.Suffix;
        _mergeRanks = p.MergeRanks;
        VocabSize = p.VocabSize;
        BosTokenId = p.BosTokenId;
        EosTokenId = p.EosTokenId;
        EosTokenIds = p.EosTokenIds;
        AddBosByDefault = p.AddBosByDefault;
    }

    /// <summary>The id of the beginning-of-sequence token, or <see langword="null"/> when the tokenizer has none.</summary>
    public int? BosTokenId { get; }

    /// <summary>The id of the end-of-sequence token, or <see langword="null"/> when the tokenizer has none.</summary>
    public int? EosTokenId { get; }

    /// <summary>
    /// Every id that ends a sequence: <see cref="EosTokenId"/> and the ids of <c>eos_token_id</c> in <c>config.json</c>
    /// (a list in Llama 3.1 Instruct, say).
    /// </summary>
    public IReadOnlyList<int> EosTokenIds { get; }

    /// <summary>One more than the largest token id (vocabulary and added tokens): the embedding rows the ids need.</summary>
    public int VocabSize { get; }

    /// <summary>
    /// Whether the model expects a BOS token in front of its input: <c>add_bos_token</c> of <c>tokenizer_config.json</c>,
    /// or else whether the <c>TemplateProcessing</c> post-processor of <c>tokenizer.json</c> starts with the BOS token.
    /// </summary>
    public bool AddBosByDefault { get; }

    /// <summary>Loads the tokenizer of a Hugging Face model folder.</summary>
    /// <param name="modelFolder">
    /// A folder with <c>tokenizer.json</c> (required), <c>tokenizer_config.json</c> (optional: BOS/EOS tokens,
    /// <c>add_bos_token</c>) and <c>config.json</c> (optional: <c>bos_token_id</c>/<c>eos_token_id</c> where the
    /// tokenizer files name none).
    /// </param>
    /// <returns>The tokenizer.</returns>
    /// <exception cref="FileNotFoundException"><c>tokenizer.json</c> is missing.</exception>
    /// <exception cref="InvalidDataException">A file is malformed or uses a feature this loader does not support.</exception>
    public static HfTokenizer Load(string modelFolder)
    {
        ArgumentNullException.ThrowIfNull(modelFolder);
        string tokenizerPath = Path.Combine(modelFolder, "tokenizer.json");
        if (!File.Exists(tokenizerPath))
        {
            throw new FileNotFoundException($"{tokenizerPath}: the model folder has no tokenizer.json.", tokenizerPath);
        }

        using JsonDocument tokenizerJson = ParseFile(tokenizerPath);
        string configPath = Path.Combine(modelFolder, "tokenizer_config.json");
        using JsonDocument? tokenizerConfig = File.Exists(configPath) ? ParseFile(configPath) : null;
        string modelConfigPath = Path.Combine(modelFolder, "config.json");
        using JsonDocument? modelConfig = File.Exists(modelConfigPath) ? ParseFile(modelConfigPath) : null;

        return new HfTokenizer(Parts.Build(tokenizerPath, tokenizerJson.RootElement, configPath, tokenizerConfig?.RootElement, modelConfigPath, modelConfig?.RootElement));
    }

    /// <summary>Encodes text, with a BOS token in front when <see cref="AddBosByDefault"/> says so.</summary>
    /// <param name="text">The text.</param>
    /// <returns>The token ids.</returns>
    public int[] Encode(string text) => Encode(text, AddBosByDefault);

    /// <summary>Encodes text as Hugging Face <c>tokenizers</c> does; added tokens written in the text become their ids.</summary>
    /// <param name="text">The text.</param>
    /// <param name="addBos">Whether to put <see cref="BosTokenId"/> in front.</param>
    /// <returns>The token ids.</returns>
    /// <exception cref="InvalidOperationException"><paramref name="addBos"/> is set but the tokenizer has no BOS token.</exception>
    public int[] Encode(string text, bool addBos)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = new List<int>(text.Length / 3 + 2);
        if (addBos)
        {
            ids.Add(BosTokenId ?? throw new InvalidOperationException("This tokenizer has no BOS token (no bos_token in tokenizer_config.json, no bos_token_id in config.json)."));
        }

        foreach (TextSegment segment in _rawSplitter.Split(text))
        {
            if (segment.TokenId is int addedId)
            {
                ids.Add(addedId);
                continue;
            }

            string raw = text.Substring(segment.Start, segment.Length);
            string normalized = _normalizer?.Normalize(raw) ?? raw;
            foreach (TextSegment piece in _normalizedSplitter.Split(normalized))
            {
                if (piece.TokenId is int normalizedAddedId)
                {
                    ids.Add(normalizedAddedId);
                    continue;
                }

                bool atStart = segment.Start == 0 && piece.Start == 0;
                foreach (string word in _preTokenizer.PreTokenize(normalized.Substring(piece.Start, piece.Length), atStart))
                {
                    EncodeWord(word, ids);
                }
            }
        }

        return [.. ids];
    }

    /// <summary>Decodes ids to text, leaving out special tokens (BOS, EOS, ...).</summary>
    /// <param name="ids">Token ids.</param>
    /// <returns>The text.</returns>
    public string Decode(IEnumerable<int> ids) => Decode(ids, skipSpecialTokens: true);

    /// <summary>Decodes ids to text through the <c>decoder</c> of <c>tokenizer.json</c>.</summary>
    /// <param name="ids">Token ids; ids that name no token are skipped, as Hugging Face does.</param>
    /// <param name="skipSpecialTokens">Whether to leave out the added tokens marked <c>special</c>.</param>
    /// <returns>The text.</returns>
    public string Decode(IEnumerable<int> ids, bool skipSpecialTokens)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var tokens = new List<string>();
        foreach (int id in ids)
        {
            if (_idToToken.TryGetValue(id, out string? token) && !(skipSpecialTokens && _specialIds.Contains(id)))
            {
                tokens.Add(token);
            }
        }

        return _decoder.Decode(tokens);
    }

    /// <summary>The id of a token (an added token or a vocabulary entry, as written in <c>tokenizer.json</c>).</summary>
    /// <param name="token">The token string.</param>
    /// <returns>Its id, or <see langword="null"/>.</returns>
    public int? TokenToId(string token)
    {
        ArgumentNullException.ThrowIfNull(token);
        return _tokenToId.TryGetValue(token, out int id) ? id : null;
    }

    /// <summary>The token string of an id, as written in <c>tokenizer.json</c>.</summary>
    /// <param name="id">A token id.</param>
    /// <returns>The token, or <see langword="null"/> when no token has that id.</returns>
    public string? IdToToken(int id) => _idToToken.GetValueOrDefault(id);

    private void EncodeWord(string word, List<int> ids)
    {
        if (_ignoreMerges)
        {
            string key = _preTokenizer.ByteLevel ? ByteLevelAlphabet.Encode(word) : word;
            if (_vocab.TryGetValue(key, out int whole))
            {
                ids.Add(whole);
                return;
            }
        }

        string symbols = _preTokenizer.ByteLevel ? ByteLevelAlphabet.Encode(word) : word;
        if (!HasOutOfVocabulary(symbols))
        {
            ids.AddRange(_bpe.EncodeToIds(word, considerPreTokenization: false, considerNormalization: false));
            return;
        }

        EncodeWithOutOfVocabulary(symbols, ids);
    }

    /// <summary>
    /// Whether a character of the (byte-level mapped) word has no vocabulary entry in the form Hugging Face looks it up
    /// in: with the <c>continuing_subword_prefix</c> after the first character, with the <c>end_of_word_suffix</c> on the last.
    /// </summary>
    private bool HasOutOfVocabulary(string word)
    {
        for (int i = 0; i < word.Length;)
        {
            int length = CharLength(word, i);
            if (LookUpCharacter(word, i, length) is null)
            {
                return true;
            }

            i += length;
        }

        return false;
    }

    /// <summary>
    /// Encodes a word with characters outside the vocabulary as Hugging Face <c>tokenizers</c>' BPE does
    /// (<c>BPE::merge_word</c>): each such character becomes its <c>&lt;0xNN&gt;</c> byte tokens with
    /// <c>byte_fallback</c> (when all exist), else the <c>unk_token</c> (consecutive ones fused into one with
    /// <c>fuse_unk</c>), else it is DROPPED — and its neighbours become adjacent, so a merge may join them. Then the
    /// merges are applied by rank, leftmost first among equal ranks.
    /// </summary>
    private void EncodeWithOutOfVocabulary(string word, List<int> ids)
    {
        var symbols = new List<int>(word.Length);
        bool pendingUnk = false;
        for (int i = 0; i < word.Length;)
        {
            int length = CharLength(word, i);
            if (LookUpCharacter(word, i, length) is int id)
            {
                pendingUnk = false;
                symbols.Add(id);
                i += length;
                continue;
            }

            // byte_fallback reads the character's own bytes (a byte-level word has no byte tokens: its characters are bytes).
            if (_byteFallback && !_preTokenizer.ByteLevel && AppendByteTokens(word.AsSpan(i, length), symbols))
            {
                pendingUnk = false;
            }
            else if (_unkId is int unk)
            {
                if (!(pendingUnk && _fuseUnk))
                {
                    symbols.Add(unk);
                }

                pendingUnk = true;
            }

            i += length;
        }

        // Merge by rank (the lowest rank first; the leftmost pair among equal ranks), as Word::merge_all does.
        while (symbols.Count > 1)
        {
            int best = -1;
            (int Rank, int Merged) bestMerge = (int.MaxValue, -1);
            for (int k = 0; k + 1 < symbols.Count; k++)
            {
                if (_mergeRanks.TryGetValue((symbols[k], symbols[k + 1]), out var merge) && merge.Rank < bestMerge.Rank)
                {
                    best = k;
                    bestMerge = merge;
                }
            }

            if (best < 0)
            {
                break;
            }

            symbols[best] = bestMerge.Merged;
            symbols.RemoveAt(best + 1);
        }

        ids.AddRange(symbols);
    }

    /// <summary>The vocabulary id of the character at <paramref name="start"/>, looked up as Hugging Face does, or null.</summary>
    private int? LookUpCharacter(string word, int start, int length)
    {
        bool first = start == 0;
        bool last = start + length == word.Length;
        if ((first || _prefix is null) && (!last || _suffix is null))
        {
            return _vocabSpan.TryGetValue(word.AsSpan(start, length), out int plain) ? plain : null;
        }

        string key = (first ? "" : _prefix) + word.Substring(start, length) + (last ? _suffix : "");
        return _vocab.TryGetValue(key, out int id) ? id : null;
    }

    private static int CharLength(string word, int i) =>
        char.IsHighSurrogate(word[i]) && i + 1 < word.Length && char.IsLowSurrogate(word[i + 1]) ? 2 : 1;

    private bool AppendByteTokens(ReadOnlySpan<char> character, List<int> ids)
    {
        Span<byte> utf8 = stackalloc byte[8];
        int count = Encoding.UTF8.GetBytes(character, utf8);
        for (int b = 0; b < count; b++)
        {
            if (_byteTokenIds![utf8[b]] < 0)
            {
                return false;
            }
        }

        for (int b = 0; b < count; b++)
        {
            ids.Add(_byteTokenIds![utf8[b]]);
        }

        return true;
    }

    private static JsonDocument ParseFile(string path)
    {
        try
        {
            return JsonDocument.Parse(File.ReadAllBytes(path), new JsonDocumentOptions { AllowTrailingCommas = true });
        }
        catch (JsonException ex)
        {
            throw new InvalidDataException($"{path}: not valid JSON ({ex.Message}).", ex);
        }
    }

    /// <summary>Everything read from the files, checked.</summary>
    private sealed class Parts
    {
        public required BpeTokenizer Bpe { get; init; }
        public required Dictionary<string, int> Vocab { get; init; }
        public required Dictionary<string, int> TokenToId { get; init; }
        public required Dictionary<int, string> IdToToken { get; init; }
        public required HashSet<int> SpecialIds { get; init; }
        public required AddedTokenSplitter RawSplitter { get; init; }
        public required AddedTokenSplitter NormalizedSplitter { get; init; }
        public required HfNormalizer? Normalizer { get; init; }
        public required HfPreTokenizer PreTokenizer { get; init; }
        public required HfDecoder Decoder { get; init; }
        public required bool IgnoreMerges { get; init; }
        public required bool ByteFallback { get; init; }
        public required int? UnkId { get; init; }
        public required bool FuseUnk { get; init; }
        public required int[]? ByteTokenIds { get; init; }
        public required string? Prefix { get; init; }
        public required string? Suffix { get; init; }
        public required Dictionary<(int Left, int Right), (int Rank, int Merged)> MergeRanks { get; init; }
        public required int VocabSize { get; init; }
        public required int? BosTokenId { get; init; }
        public required int? EosTokenId { get; init; }
        public required IReadOnlyList<int> EosTokenIds { get; init; }
        public required bool AddBosByDefault { get; init; }

        public static Parts Build(string file, JsonElement root, string configFile, JsonElement? config, string modelConfigFile, JsonElement? modelConfig)
        {
            if (root.ValueKind != JsonValueKind.Object)
            {
                throw HfJson.Error(file, "the top level is not a JSON object.");
            }

            if (!root.TryGetProperty("model", out JsonElement model) || model.ValueKind != JsonValueKind.Object)
            {
                throw HfJson.Error(file, "there is no \"model\" object.");
            }

            string? modelType = HfJson.OptString(model, "type") ?? (model.TryGetProperty("merges", out _) ? "BPE" : null);
            if (modelType != "BPE")
            {
                throw HfJson.Error(file, $"model type '{modelType ?? "(none)"}' is not supported; only BPE tokenizers (byte-level or SentencePiece-style) can be loaded.");
            }

            if (model.TryGetProperty("dropout", out JsonElement dropout) && dropout.ValueKind == JsonValueKind.Number && dropout.GetDouble() > 0)
            {
                throw HfJson.Error(file, "model dropout > 0 (BPE-dropout) is not supported: it makes encoding random.");
            }

            Dictionary<string, int> vocab = ReadVocab(model, file);
            List<string> merges = ReadMerges(model, file);

            HfNormalizer? normalizer = HfNormalizer.Parse(Get(root, "normalizer"), file);
            HfPreTokenizer preTokenizer = HfPreTokenizer.Parse(Get(root, "pre_tokenizer"), file);
            HfDecoder decoder = HfDecoder.Parse(Get(root, "decoder"), file);

            string? unk = HfJson.OptString(model, "unk_token");
            int? unkId = null;
            if (unk is not null)
            {
                unkId = vocab.TryGetValue(unk, out int u) ? u : throw HfJson.Error(file, $"model unk_token '{unk}' is not in the vocabulary.");
            }

            string? prefix = NullIfEmpty(HfJson.OptString(model, "continuing_subword_prefix"));
            string? suffix = NullIfEmpty(HfJson.OptString(model, "end_of_word_suffix"));
            bool byteFallback = HfJson.OptBool(model, "byte_fallback", false);
            if (byteFallback && !preTokenizer.ByteLevel && (prefix is not null || suffix is not null))
            {
                throw HfJson.Error(file, "model byte_fallback together with continuing_subword_prefix/end_of_word_suffix is not supported.");
            }

            // The library merges one pre-tokenized word per call. Its own normalizer/pre-tokenizer hooks are left unset:
            // Hugging Face normalizes each segment between added tokens separately (Prepend, Metaspace "first"), its
            // Split keeps unmatched gaps (RegexPreTokenizer drops them), and BeginningOfSentenceToken would be added
            // to every word. LlamaTokenizer/SentencePieceTokenizer need a SentencePiece .model file, not tokenizer.json.
            BpeTokenizer bpe;
            try
            {
                bpe = BpeTokenizer.Create(new BpeOptions(vocab)
                {
                    Merges = merges,
                    UnknownToken = unk,
                    FuseUnknownTokens = HfJson.OptBool(model, "fuse_unk", false),
                    ContinuingSubwordPrefix = prefix,
                    EndOfWordSuffix = suffix,
                    ByteLevel = preTokenizer.ByteLevel,
                });
            }
            catch (Exception ex) when (ex is InvalidOperationException or ArgumentException)
            {
                throw HfJson.Error(file, $"the BPE model is inconsistent: {ex.Message}");
            }

            // Added tokens.
            var tokenToId = new Dictionary<string, int>(vocab, StringComparer.Ordinal);
            var idToToken = new Dictionary<int, string>(vocab.Count);
            foreach (KeyValuePair<string, int> kv in vocab)
            {
                idToToken.TryAdd(kv.Value, kv.Key);
            }

            List<HfAddedToken> added = ReadAddedTokens(root, file);
            var specialIds = new HashSet<int>();
            foreach (HfAddedToken token in added)
            {
                tokenToId[token.Content] = token.Id;
                idToToken[token.Id] = token.Content;
                if (token.Special)
                {
                    specialIds.Add(token.Id);
                    if (vocab.TryGetValue(token.Content, out int sameInVocab))
                    {
                        specialIds.Add(sameInVocab);
                    }
                }
            }

            var raw = new AddedTokenSplitter(added.Where(t => !t.Normalized).Select(t => (t.Content, t)));
            var normalizedTokens = new AddedTokenSplitter(added.Where(t => t.Normalized).Select(t => (normalizer?.Normalize(t.Content) ?? t.Content, t)));

            int[]? byteTokenIds = null;
            if (byteFallback && !preTokenizer.ByteLevel)
            {
                byteTokenIds = new int[256];
                for (int b = 0; b < 256; b++)
                {
                    byteTokenIds[b] = vocab.TryGetValue($"<0x{b:X2}>", out int id) ? id : -1;
                }
            }

            int vocabSize = 0;
            foreach (int id in idToToken.Keys)
            {
                if (id < 0)
                {
                    throw HfJson.Error(file, $"token id {id} is negative.");
                }

                vocabSize = Math.Max(vocabSize, id + 1);
            }

            // BOS/EOS.
            JsonElement cfg = config ?? default;
            JsonElement mcfg = modelConfig ?? default;
            int? ResolveToken(string? token, string what) =>
                token is null ? null
                : tokenToId.TryGetValue(token, out int id) ? id
                : throw HfJson.Error(configFile, $"{what} '{token}' is not a token of {file}.");

            int? templateBos = ReadTemplateFirstSpecialToken(Get(root, "post_processor"), file);
            List<int> configBos = ReadIds(mcfg, "bos_token_id", modelConfigFile);
            int? bos = ResolveToken(ReadTokenString(cfg, "bos_token"), "bos_token") ?? (configBos.Count > 0 ? configBos[0] : templateBos);

            List<int> configEos = ReadIds(mcfg, "eos_token_id", modelConfigFile);
            int? eos = ResolveToken(ReadTokenString(cfg, "eos_token"), "eos_token") ?? (configEos.Count > 0 ? configEos[0] : null);
            var eosIds = new List<int>();
            if (eos is int e)
            {
                eosIds.Add(e);
            }

            eosIds.AddRange(configEos.Where(id => !eosIds.Contains(id)));

            bool addBos = cfg.ValueKind == JsonValueKind.Object && cfg.TryGetProperty("add_bos_token", out JsonElement ab) && ab.ValueKind is JsonValueKind.True or JsonValueKind.False
                ? ab.GetBoolean()
                : templateBos is not null && templateBos == bos;
            if (addBos && bos is null)
            {
                throw HfJson.Error(configFile, "add_bos_token is true but no BOS token is defined.");
            }

            return new Parts
            {
                Bpe = bpe,
                Vocab = vocab,
                TokenToId = tokenToId,
                IdToToken = idToToken,
                SpecialIds = specialIds,
                RawSplitter = raw,
                NormalizedSplitter = normalizedTokens,
                Normalizer = normalizer,
                PreTokenizer = preTokenizer,
                Decoder = decoder,
                IgnoreMerges = HfJson.OptBool(model, "ignore_merges", false),
                ByteFallback = byteFallback,
                UnkId = unkId,
                FuseUnk = HfJson.OptBool(model, "fuse_unk", false),
                ByteTokenIds = byteTokenIds,
                Prefix = prefix,
                Suffix = suffix,
                MergeRanks = MergeRanksOf(vocab, merges, prefix, file),
                VocabSize = vocabSize,
                BosTokenId = bos,
                EosTokenId = eos,
                EosTokenIds = eosIds,
                AddBosByDefault = addBos,
            };
        }

        /// <summary>
        /// (left id, right id) → (rank, id of the merged token), as Hugging Face builds it: the merged token is left +
        /// right without the right's <c>continuing_subword_prefix</c>; the first of repeated merges keeps its rank.
        /// </summary>
        private static Dictionary<(int Left, int Right), (int Rank, int Merged)> MergeRanksOf(Dictionary<string, int> vocab, List<string> merges, string? prefix, string file)
        {
            var ranks = new Dictionary<(int Left, int Right), (int Rank, int Merged)>(merges.Count);
            for (int rank = 0; rank < merges.Count; rank++)
            {
                string merge = merges[rank];
                int space = merge.IndexOf(' ', StringComparison.Ordinal);
                string left = merge[..space];
                string right = merge[(space + 1)..];
                string merged = left + (prefix is not null && right.StartsWith(prefix, StringComparison.Ordinal) ? right[prefix.Length..] : right);
                if (!vocab.TryGetValue(left, out int l) || !vocab.TryGetValue(right, out int r) || !vocab.TryGetValue(merged, out int m))
                {
                    throw HfJson.Error(file, $"model merge '{merge}' uses or makes a token that is not in the vocabulary.");
                }

                ranks.TryAdd((l, r), (rank, m));
            }

            return ranks;
        }

        private static JsonElement Get(JsonElement obj, string name) => obj.TryGetProperty(name, out JsonElement v) ? v : default;

        private static string? NullIfEmpty(string? s) => string.IsNullOrEmpty(s) ? null : s;

        private static Dictionary<string, int> ReadVocab(JsonElement model, string file)
        {
            if (!model.TryGetProperty("vocab", out JsonElement v) || v.ValueKind != JsonValueKind.Object)
            {
                throw HfJson.Error(file, "model has no \"vocab\" object.");
            }

            var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
            foreach (JsonProperty p in v.EnumerateObject())
            {
                if (p.Value.ValueKind != JsonValueKind.Number || !p.Value.TryGetInt32(out int id) || id < 0)
                {
                    throw HfJson.Error(file, $"model vocab entry '{p.Name}' has no valid id.");
                }

                vocab[p.Name] = id;
            }

            if (vocab.Count == 0)
            {
                throw HfJson.Error(file, "model vocab is empty.");
            }

            return vocab;
        }

        /// <summary>Reads merges written as <c>"a b"</c> or <c>["a", "b"]</c>; a repeated pair keeps its last rank, as in Hugging Face.</summary>
        private static List<string> ReadMerges(JsonElement model, string file)
        {
            var pairs = new List<(string Left, string Right)>();
            if (model.TryGetProperty("merges", out JsonElement m) && m.ValueKind == JsonValueKind.Array)
            {
                foreach (JsonElement entry in m.EnumerateArray())
                {
                    if (entry.ValueKind == JsonValueKind.String)
                    {
                        string s = entry.GetString()!;
                        int space = s.IndexOf(' ', StringComparison.Ordinal);
                        if (space <= 0 || space == s.Length - 1 || s.IndexOf(' ', space + 1) >= 0)
                        {
                            throw HfJson.Error(file, $"model merge '{s}' is not two tokens separated by one space.");
                        }

                        pairs.Add((s[..space], s[(space + 1)..]));
                    }
                    else if (entry.ValueKind == JsonValueKind.Array && entry.GetArrayLength() == 2
                             && entry[0].ValueKind == JsonValueKind.String && entry[1].ValueKind == JsonValueKind.String)
                    {
                        string left = entry[0].GetString()!;
                        string right = entry[1].GetString()!;
                        if (left.Length == 0 || right.Length == 0 || left.Contains(' ', StringComparison.Ordinal) || right.Contains(' ', StringComparison.Ordinal))
                        {
                            throw HfJson.Error(file, $"model merge [\"{left}\", \"{right}\"] is not supported (tokens with spaces or empty tokens).");
                        }

                        pairs.Add((left, right));
                    }
                    else
                    {
                        throw HfJson.Error(file, "model merges must be strings \"a b\" or pairs [\"a\", \"b\"].");
                    }
                }
            }

            var lastIndex = new Dictionary<(string, string), int>();
            for (int i = 0; i < pairs.Count; i++)
            {
                lastIndex[pairs[i]] = i;
            }

            var merges = new List<string>(lastIndex.Count);
            for (int i = 0; i < pairs.Count; i++)
            {
                if (lastIndex[pairs[i]] == i)
                {
                    merges.Add(pairs[i].Left + " " + pairs[i].Right);
                }
            }

            return merges;
        }

        private static List<HfAddedToken> ReadAddedTokens(JsonElement root, string file)
        {
            var result = new List<HfAddedToken>();
            if (!root.TryGetProperty("added_tokens", out JsonElement arr) || arr.ValueKind != JsonValueKind.Array)
            {
                return result;
            }

            foreach (JsonElement t in arr.EnumerateArray())
            {
                string content = HfJson.RequiredString(t, "content", file, "added_tokens entry");
                if (!t.TryGetProperty("id", out JsonElement idEl) || !idEl.TryGetInt32(out int id) || id < 0)
                {
                    throw HfJson.Error(file, $"added token '{content}' has no valid id.");
                }

                bool special = HfJson.OptBool(t, "special", false);
                result.Add(new HfAddedToken(
                    id,
                    content,
                    special,
                    HfJson.OptBool(t, "normalized", !special),
                    HfJson.OptBool(t, "lstrip", false),
                    HfJson.OptBool(t, "rstrip", false),
                    HfJson.OptBool(t, "single_word", false)));
            }

            return result;
        }

        /// <summary>The id of the special token a <c>TemplateProcessing</c> post-processor puts first, if any.</summary>
        private static int? ReadTemplateFirstSpecialToken(JsonElement processor, string file)
        {
            if (HfJson.IsNull(processor) || processor.ValueKind != JsonValueKind.Object)
            {
                return null;
            }

            string? type = HfJson.OptString(processor, "type");
            if (type == "Sequence" && processor.TryGetProperty("processors", out JsonElement list) && list.ValueKind == JsonValueKind.Array)
            {
                foreach (JsonElement p in list.EnumerateArray())
                {
                    if (ReadTemplateFirstSpecialToken(p, file) is int id)
                    {
                        return id;
                    }
                }

                return null;
            }

            if (type != "TemplateProcessing"
                || !processor.TryGetProperty("single", out JsonElement single) || single.ValueKind != JsonValueKind.Array
                || single.GetArrayLength() == 0
                || !single[0].TryGetProperty("SpecialToken", out JsonElement first))
            {
                return null;
            }

            string name = HfJson.RequiredString(first, "id", file, "post_processor TemplateProcessing SpecialToken");
            if (processor.TryGetProperty("special_tokens", out JsonElement specials) && specials.ValueKind == JsonValueKind.Object
                && specials.TryGetProperty(name, out JsonElement entry)
                && entry.TryGetProperty("ids", out JsonElement ids) && ids.ValueKind == JsonValueKind.Array && ids.GetArrayLength() == 1
                && ids[0].TryGetInt32(out int tokenId))
            {
                return tokenId;
            }

            throw HfJson.Error(file, $"post_processor TemplateProcessing names special token '{name}' without one id in special_tokens.");
        }

        /// <summary>Reads <c>bos_token</c>/<c>eos_token</c> of tokenizer_config.json: a string or <c>{"content": ...}</c>.</summary>
        private static string? ReadTokenString(JsonElement config, string name)
        {
            if (config.ValueKind != JsonValueKind.Object || !config.TryGetProperty(name, out JsonElement v))
            {
                return null;
            }

            return v.ValueKind switch
            {
                JsonValueKind.String => v.GetString(),
                JsonValueKind.Object => HfJson.OptString(v, "content"),
                _ => null,
            };
        }

        /// <summary>Reads an id or a list of ids of config.json (<c>eos_token_id</c> may be a list).</summary>
        private static List<int> ReadIds(JsonElement config, string name, string file)
        {
            var ids = new List<int>();
            if (config.ValueKind != JsonValueKind.Object || !config.TryGetProperty(name, out JsonElement v) || v.ValueKind == JsonValueKind.Null)
            {
                return ids;
            }

            if (v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out int single) && single >= 0)
            {
                ids.Add(single);
                return ids;
            }

            if (v.ValueKind == JsonValueKind.Array)
            {
                foreach (JsonElement item in v.EnumerateArray())
                {
                    if (item.ValueKind != JsonValueKind.Number || !item.TryGetInt32(out int id) || id < 0)
                    {
                        throw HfJson.Error(file, $"{name} must be a token id or a list of token ids.");
                    }

                    ids.Add(id);
                }

                return ids;
            }

            throw HfJson.Error(file, $"{name} must be a token id or a list of token ids.");
        }
    }
}
