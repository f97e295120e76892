using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using Pip.Checkpoints;

namespace Pip.Tokenization;

/// <summary>The kinds of SentencePiece pieces (the <c>Type</c> enum of SentencePiece's <c>ModelProto</c>).</summary>
public enum SentencePieceKind
{
    /// <summary>An ordinary piece, merged by BPE.</summary>
    Normal = 1,

    /// <summary>The unknown-token piece.</summary>
    Unknown = 2,

    /// <summary>A control piece (BOS, EOS): never produced from text.</summary>
    Control = 3,

    /// <summary>A user-defined piece, matched whole in the text.</summary>
    UserDefined = 4,

    /// <summary>An unused piece.</summary>
    Unused = 5,

    /// <summary>A byte piece (<c>&lt;0x00&gt;</c> … <c>&lt;0xFF&gt;</c>) for byte fallback.</summary>
    Byte = 6,
}

/// <summary>One piece of a SentencePiece vocabulary.</summary>
/// <param name="Text">The piece as SentencePiece writes it: <c>▁</c> (U+2581) for a space, <c>&lt;0xNN&gt;</c> for a byte piece.</param>
/// <param name="Score">Its score; for BPE, higher scores merge first.</param>
/// <param name="Kind">Its kind.</param>
public sealed record SentencePieceEntry(string Text, float Score, SentencePieceKind Kind);

/// <summary>
/// The vocabulary of a SentencePiece BPE tokenizer with byte fallback (Llama 2, llama2.c), read from a llama2.c
/// <c>tokenizer.bin</c> or a SentencePiece <c>.model</c> file, with the merges Hugging Face derives from it.
/// </summary>
/// <remarks>
/// <para>llama2.c's <c>tokenizer.bin</c> is an int32 <c>max_token_length</c>, then per token a float32 score, an int32
/// byte length and the UTF-8 bytes, all little-endian; it does not store the token count, which is the model's
/// <c>vocab_size</c>. llama2.c's exporter writes spaces instead of <c>▁</c> and <c>"\n&lt;s&gt;\n"</c> /
/// <c>"\n&lt;/s&gt;\n"</c> for BOS and EOS; reading reverses that: ids 0, 1 and 2 become <c>&lt;unk&gt;</c>,
/// <c>&lt;s&gt;</c> and <c>&lt;/s&gt;</c> (llama2.c's fixed BOS = 1, EOS = 2), <c>&lt;0xNN&gt;</c> pieces are byte
/// pieces, spaces become <c>▁</c>.</para>
/// <para>A SentencePiece <c>.model</c> is a <c>ModelProto</c> protobuf; only what a BPE vocabulary needs is read: the
/// pieces (text, score, type), the model type (only BPE is accepted) and the unknown/BOS/EOS ids of the trainer spec.</para>
/// <para>Every problem is a <see cref="CheckpointFormatException"/> naming the file.</para>
/// </remarks>
public sealed class SentencePieceVocabulary
{
    /// <summary>SentencePiece's meta symbol for a space, U+2581.</summary>
    public const string SpaceSymbol = "\u2581";

    private SentencePieceVocabulary(IReadOnlyList<SentencePieceEntry> pieces, int unknownId, int? bosId, int? eosId, string source)
    {
        Pieces = pieces;
        UnknownId = unknownId;
        BosId = bosId;
        EosId = eosId;
        var ids = new Dictionary<string, int>(pieces.Count, StringComparer.Ordinal);
        for (int i = 0; i < pieces.Count; i++)
        {
            if (!ids.TryAdd(pieces[i].Text, i))
                throw new CheckpointFormatException(source, $"token {i} '{pieces[i].Text}' repeats token {ids[pieces[i].Text]}; a vocabulary maps each piece to one id.");
        }
        _ids = ids;
    }

    private readonly Dictionary<string, int> _ids;

    /// <summary>The pieces, by id.</summary>
    public IReadOnlyList<SentencePieceEntry> Pieces { get; }

    /// <summary>The id of the unknown piece.</summary>
    public int UnknownId { get; }

    /// <summary>The id of the BOS piece, or null when there is none.</summary>
    public int? BosId { get; }

    /// <summary>The id of the EOS piece, or null when there is none.</summary>
    public int? EosId { get; }

    /// <summary>The number of pieces.</summary>
    public int Count => Pieces.Count;

    /// <summary>The id of a piece, or null.</summary>
    /// <param name="piece">The piece text (with <c>▁</c> for spaces).</param>
    public int? IdOf(string piece) => _ids.TryGetValue(piece ?? throw new ArgumentNullException(nameof(piece)), out int id) ? id : null;

    /// <summary>Loads a llama2.c <c>tokenizer.bin</c> (extension <c>.bin</c>) or a SentencePiece <c>.model</c> file (any other extension).</summary>
    /// <param name="path">The file.</param>
    /// <param name="vocabSize">The model's vocabulary size: the token count of a <c>.bin</c> file (which does not store it),
    /// and the piece count a <c>.model</c> file must have.</param>
    /// <returns>The vocabulary.</returns>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="CheckpointFormatException">The file is malformed or its size does not match <paramref name="vocabSize"/>.</exception>
    public static SentencePieceVocabulary Load(string path, int vocabSize)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (Path.GetExtension(path).Equals(".bin", StringComparison.OrdinalIgnoreCase))
            return LoadLlama2C(path, vocabSize);
        var vocabulary = LoadSentencePieceModel(path);
        if (vocabulary.Count != vocabSize)
            throw new CheckpointFormatException(Path.GetFullPath(path), $"the tokenizer has {vocabulary.Count} pieces but the model's vocab_size is {vocabSize}.");
        return vocabulary;
    }

    /// <summary>Reads a llama2.c <c>tokenizer.bin</c>.</summary>
    /// <param name="path">The file.</param>
    /// <param name="vocabSize">The number of tokens (the model's <c>vocab_size</c>, at least 3); the file must hold exactly these.</param>
    /// <returns>The vocabulary.</returns>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="CheckpointFormatException">The file is truncated, has bytes after the last token, or a token is not UTF-8.</exception>
    public static SentencePieceVocabulary LoadLlama2C(string path, int vocabSize)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentOutOfRangeException.ThrowIfLessThan(vocabSize, 3);
        var full = Path.GetFullPath(path);
        if (!File.Exists(full)) throw new FileNotFoundException($"Tokenizer file '{full}' does not exist.", full);
        var bytes = File.ReadAllBytes(full);
        if (bytes.Length < 4)
            throw new CheckpointFormatException(full, $"the file has {bytes.Length} bytes, too few for the int32 max_token_length a llama2.c tokenizer starts with.");
        int maxLength = BinaryPrimitives.ReadInt32LittleEndian(bytes);
        if (maxLength <= 0)
            throw new CheckpointFormatException(full, $"max_token_length is {maxLength}; it must be positive.", "max_token_length");
        var utf8 = new UTF8Encoding(false, true);
        var pieces = new List<SentencePieceEntry>(vocabSize);
        int at = 4;
        for (int i = 0; i < vocabSize; i++)
        {
            if (bytes.Length - at < 8)
                throw new CheckpointFormatException(full, $"the file ends at byte {bytes.Length} inside token {i} of {vocabSize} (the model's vocab_size): it is truncated, or the tokenizer has fewer tokens than the model.");
            float score = BinaryPrimitives.ReadSingleLittleEndian(bytes.AsSpan(at));
            int length = BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(at + 4));
            at += 8;
            if (length < 0 || length > maxLength)
                throw new CheckpointFormatException(full, $"token {i} has length {length}, outside 0..{maxLength} (max_token_length).");
            if (bytes.Length - at < length)
                throw new CheckpointFormatException(full, $"the file ends at byte {bytes.Length} inside token {i} of {vocabSize} (the model's vocab_size): it is truncated, or the tokenizer has fewer tokens than the model.");
            string text;
            try
            {
                text = utf8.GetString(bytes, at, length);
            }
            catch (DecoderFallbackException e)
            {
                throw new CheckpointFormatException(full, $"token {i} is not valid UTF-8.", null, e);
            }
            at += length;
            pieces.Add(i switch
            {
                0 => new SentencePieceEntry("<unk>", score, SentencePieceKind.Unknown),
                1 => new SentencePieceEntry("<s>", score, SentencePieceKind.Control),
                2 => new SentencePieceEntry("</s>", score, SentencePieceKind.Control),
                _ when IsBytePiece(text) => new SentencePieceEntry(text, score, SentencePieceKind.Byte),
                _ => new SentencePieceEntry(text.Replace(" ", SpaceSymbol, StringComparison.Ordinal), score, SentencePieceKind.Normal),
            });
        }
        if (at != bytes.Length)
            throw new CheckpointFormatException(full, $"{bytes.Length - at} bytes follow token {vocabSize - 1}: the tokenizer has more tokens than the model's vocab_size {vocabSize}, or the file is not a llama2.c tokenizer.");
        return new SentencePieceVocabulary(pieces, 0, 1, 2, full);
    }

    /// <summary>Reads the vocabulary of a SentencePiece BPE <c>.model</c> file (a <c>ModelProto</c> protobuf).</summary>
    /// <param name="path">The file.</param>
    /// <returns>The vocabulary.</returns>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="CheckpointFormatException">The file is not a valid protobuf, is truncated, or is not a BPE model.</exception>
    public static SentencePieceVocabulary LoadSentencePieceModel(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var full = Path.GetFullPath(path);
        if (!File.Exists(full)) throw new FileNotFoundException($"Tokenizer file '{full}' does not exist.", full);
        var bytes = File.ReadAllBytes(full);
        var pieces = new List<SentencePieceEntry>();
        int modelType = 1; // UNIGRAM, SentencePiece's default
        int unk = 0, bos = 1, eos = 2;
        try
        {
            var reader = new ProtoReader(bytes);
            while (reader.Next(out int field, out int wire))
            {
                if (field == 1 && wire == 2) pieces.Add(ReadPiece(reader.Message(), pieces.Count));
                else if (field == 2 && wire == 2)
                {
                    var spec = reader.Message();
                    while (spec.Next(out int f, out int w))
                    {
                        if (f == 3 && w == 0) modelType = (int)spec.Varint();
                        else if (f == 40 && w == 0) unk = (int)spec.Varint();
                        else if (f == 41 && w == 0) bos = (int)spec.Varint();
                        else if (f == 42 && w == 0) eos = (int)spec.Varint();
                        else spec.Skip(w);
                    }
                }
                else reader.Skip(wire);
            }
        }
        catch (FormatException e)
        {
            throw new CheckpointFormatException(full, $"not a valid SentencePiece model protobuf ({e.Message}); the file may be truncated.", null, e);
        }
        catch (DecoderFallbackException e)
        {
            throw new CheckpointFormatException(full, "a piece is not valid UTF-8.", null, e);
        }
        if (pieces.Count == 0)
            throw new CheckpointFormatException(full, "the SentencePiece model has no pieces.");
        if (modelType != 2)
            throw new CheckpointFormatException(full, $"the SentencePiece model type is {ModelTypeName(modelType)}; only BPE models can be converted.", "trainer_spec.model_type");
        if (unk < 0 || unk >= pieces.Count)
            throw new CheckpointFormatException(full, $"the unknown-piece id {unk} is outside the {pieces.Count} pieces.", "trainer_spec.unk_id");
        int? Optional(int id, string field) => id < 0 ? null : id < pieces.Count ? id
            : throw new CheckpointFormatException(full, $"id {id} is outside the {pieces.Count} pieces.", field);
        return new SentencePieceVocabulary(pieces, unk, Optional(bos, "trainer_spec.bos_id"), Optional(eos, "trainer_spec.eos_id"), full);
    }

    /// <summary>
    /// The BPE merges, derived from the vocabulary as Hugging Face transformers' SentencePiece converter does: every
    /// split of a piece into two pieces that are both in the vocabulary is a merge; merges are ranked by the merged
    /// piece's score (highest first), then by the lengths of the left and right parts (longest first), then by
    /// vocabulary order.
    /// </summary>
    /// <returns>The merges, first to apply first.</returns>
    public IReadOnlyList<(string Left, string Right)> BuildMerges()
    {
        var merges = new List<(string Left, string Right, float Score, int LeftLength, int RightLength)>();
        var local = new List<(string Left, string Right, int LeftId, int RightId)>();
        foreach (var piece in Pieces)
        {
            local.Clear();
            string text = piece.Text;
            for (int i = 1; i < text.Length; i++)
            {
                if (char.IsLowSurrogate(text[i]) && char.IsHighSurrogate(text[i - 1])) continue; // split by code points, as Python does
                string left = text[..i], right = text[i..];
                if (_ids.TryGetValue(left, out int l) && _ids.TryGetValue(right, out int r)) local.Add((left, right, l, r));
            }
            foreach (var m in local.OrderBy(m => m.LeftId).ThenBy(m => m.RightId))
                merges.Add((m.Left, m.Right, piece.Score, CodePoints(m.Left), CodePoints(m.Right)));
        }
        // LINQ's ordering is stable, as Python's sort with reverse=True is.
        return merges.OrderByDescending(m => m.Score).ThenByDescending(m => m.LeftLength).ThenByDescending(m => m.RightLength)
            .Select(m => (m.Left, m.Right)).ToList();
    }

    private static int CodePoints(string s)
    {
        int n = 0;
        for (int i = 0; i < s.Length; i++)
        {
            if (!(char.IsLowSurrogate(s[i]) && i > 0 && char.IsHighSurrogate(s[i - 1]))) n++;
        }
        return n;
    }

    private static bool IsBytePiece(string text) =>
        text.Length == 6 && text.StartsWith("<0x", StringComparison.Ordinal) && text[5] == '>'
        && byte.TryParse(text.AsSpan(3, 2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out _);

    private static SentencePieceEntry ReadPiece(ProtoReader reader, int index)
    {
        string? text = null;
        float score = 0;
        int kind = (int)SentencePieceKind.Normal;
        while (reader.Next(out int field, out int wire))
        {
            if (field == 1 && wire == 2) text = new UTF8Encoding(false, true).GetString(reader.Bytes());
            else if (field == 2 && wire == 5) score = reader.Float();
            else if (field == 3 && wire == 0) kind = (int)reader.Varint();
            else reader.Skip(wire);
        }
        if (text is null) throw new FormatException($"piece {index} has no text");
        if (!Enum.IsDefined((SentencePieceKind)kind)) throw new FormatException($"piece {index} has the unknown type {kind}");
        return new SentencePieceEntry(text, score, (SentencePieceKind)kind);
    }

    private static string ModelTypeName(int type) => type switch
    {
        1 => "UNIGRAM",
        2 => "BPE",
        3 => "WORD",
        4 => "CHAR",
        _ => type.ToString(CultureInfo.InvariantCulture),
    };

    /// <summary>A minimal protobuf wire-format reader over a byte range; malformed input throws <see cref="FormatException"/>.</summary>
    private sealed class ProtoReader(byte[] buffer, int start, int end)
    {
        private int _at = start;

        public ProtoReader(byte[] buffer)
            : this(buffer, 0, buffer.Length)
        {
        }

        public bool Next(out int field, out int wire)
        {
            field = wire = 0;
            if (_at >= end) return false;
            ulong key = Varint();
            field = (int)(key >> 3);
            wire = (int)(key & 7);
            if (field <= 0) throw new FormatException($"field number 0 at byte {_at}");
            return true;
        }

        public ulong Varint()
        {
            ulong value = 0;
            for (int shift = 0; shift < 64; shift += 7)
            {
                if (_at >= end) throw new FormatException($"a varint runs past byte {end}");
                byte b = buffer[_at++];
                value |= (ulong)(b & 0x7F) << shift;
                if ((b & 0x80) == 0) return value;
            }
            throw new FormatException($"a varint longer than 10 bytes at byte {_at}");
        }

        public float Float()
        {
            if (end - _at < 4) throw new FormatException($"a 32-bit value runs past byte {end}");
            float f = BinaryPrimitives.ReadSingleLittleEndian(buffer.AsSpan(_at, 4));
            _at += 4;
            return f;
        }

        public ReadOnlySpan<byte> Bytes()
        {
            var (from, length) = Range();
            return buffer.AsSpan(from, length);
        }

        public ProtoReader Message()
        {
            var (from, length) = Range();
            return new ProtoReader(buffer, from, from + length);
        }

        public void Skip(int wire)
        {
            switch (wire)
            {
                case 0: Varint(); break;
                case 1: Advance(8); break;
                case 2: Range(); break;
                case 5: Advance(4); break;
                default: throw new FormatException($"wire type {wire} at byte {_at}");
            }
        }

        private (int From, int Length) Range()
        {
            ulong length = Varint();
            if (length > (ulong)(end - _at)) throw new FormatException($"a field of {length} bytes at byte {_at} runs past byte {end}");
            int from = _at;
            _at += (int)length;
            return (from, (int)length);
        }

        private void Advance(int n)
        {
            if (end - _at < n) throw new FormatException($"a fixed-size value runs past byte {end}");
            _at += n;
        }
    }
}
