using System.Text.Encodings.Web;
using System.Text.Json;

namespace Pip.Tokenization;

/// <summary>
/// Writes Hugging Face tokenizers (<c>tokenizer.json</c> and a <c>tokenizer_config.json</c> for
/// <c>PreTrainedTokenizerFast</c>, which <see cref="HfTokenizer.Load"/> and transformers' <c>AutoTokenizer</c> both
/// read): a GPT-2-style byte-level BPE from a <see cref="ByteLevelBpeModel"/>, or a Llama-2-style SentencePiece BPE
/// with byte fallback from a <see cref="SentencePieceVocabulary"/>.
/// </summary>
public static class HfTokenizerWriter
{
    private static readonly JsonWriterOptions WriterOptions = new()
    {
        Indented = true,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    /// <summary>Writes <c>tokenizer.json</c> and <c>tokenizer_config.json</c> into <paramref name="modelFolder"/> (created if missing).</summary>
    /// <param name="modelFolder">The model folder.</param>
    /// <param name="model">The vocabulary and merges.</param>
    /// <param name="bosToken">The BOS token (one of the model's special tokens), or <see langword="null"/>.</param>
    /// <param name="eosToken">The EOS token (one of the model's special tokens), or <see langword="null"/>.</param>
    /// <param name="addBosToken">Whether encoding puts the BOS token first (written as <c>add_bos_token</c> and as a <c>TemplateProcessing</c> post-processor).</param>
    /// <exception cref="ArgumentException">A named BOS/EOS token is not a special token of the model, or <paramref name="addBosToken"/> is set without a BOS token.</exception>
    public static void WriteByteLevelBpe(string modelFolder, ByteLevelBpeModel model, string? bosToken = null, string? eosToken = null, bool addBosToken = false)
    {
        ArgumentNullException.ThrowIfNull(modelFolder);
        ArgumentNullException.ThrowIfNull(model);
        foreach ((string? token, string name) in new[] { (bosToken, nameof(bosToken)), (eosToken, nameof(eosToken)) })
        {
            if (token is not null && !model.SpecialTokens.Contains(token))
            {
                throw new ArgumentException($"'{token}' is not one of the model's special tokens.", name);
            }
        }

        if (addBosToken && bosToken is null)
        {
            throw new ArgumentException("addBosToken needs a bosToken.", nameof(addBosToken));
        }

        Directory.CreateDirectory(modelFolder);
        WriteFile(Path.Combine(modelFolder, "tokenizer.json"), w => WriteTokenizerJson(w, model, addBosToken ? bosToken : null));
        WriteFile(Path.Combine(modelFolder, "tokenizer_config.json"), w => WriteTokenizerConfig(w, model, bosToken, eosToken, addBosToken));
    }

    /// <summary>
    /// Writes a SentencePiece BPE vocabulary as Llama 2's <c>tokenizer.json</c> is written by transformers'
    /// SentencePiece converter: a BPE model with <c>byte_fallback</c> and <c>fuse_unk</c>, merges from
    /// <see cref="SentencePieceVocabulary.BuildMerges"/>, a normalizer that puts <c>▁</c> in front and turns spaces into
    /// <c>▁</c>, no pre-tokenizer, a decoder that undoes both and joins byte pieces, the unknown and control pieces as
    /// special added tokens, and BOS in front of every encoding. Also writes <c>tokenizer_config.json</c>.
    /// </summary>
    /// <param name="modelFolder">The model folder (created if missing).</param>
    /// <param name="vocabulary">The vocabulary.</param>
    /// <param name="modelMaxLength">The longest input the model takes (<c>model_max_length</c>), or null.</param>
    /// <exception cref="ArgumentException">The vocabulary has no BOS piece.</exception>
    public static void WriteSentencePieceBpe(string modelFolder, SentencePieceVocabulary vocabulary, int? modelMaxLength = null)
    {
        ArgumentNullException.ThrowIfNull(modelFolder);
        ArgumentNullException.ThrowIfNull(vocabulary);
        if (vocabulary.BosId is null) throw new ArgumentException("The vocabulary has no BOS piece.", nameof(vocabulary));
        Directory.CreateDirectory(modelFolder);
        WriteFile(Path.Combine(modelFolder, "tokenizer.json"), w => WriteSentencePieceTokenizerJson(w, vocabulary));
        WriteFile(Path.Combine(modelFolder, "tokenizer_config.json"), w => WriteSentencePieceTokenizerConfig(w, vocabulary, modelMaxLength));
    }

    private static IEnumerable<(int Id, SentencePieceEntry Piece)> AddedPieces(SentencePieceVocabulary vocabulary) =>
        vocabulary.Pieces.Select((p, id) => (id, p)).Where(x => x.p.Kind is SentencePieceKind.Unknown or SentencePieceKind.Control or SentencePieceKind.UserDefined);

    private static void WriteSentencePieceTokenizerJson(Utf8JsonWriter w, SentencePieceVocabulary vocabulary)
    {
        string bos = vocabulary.Pieces[vocabulary.BosId!.Value].Text;
        w.WriteStartObject();
        w.WriteString("version", "1.0");
        w.WriteNull("truncation");
        w.WriteNull("padding");
        w.WriteStartArray("added_tokens");
        foreach (var (id, piece) in AddedPieces(vocabulary))
        {
            w.WriteStartObject();
            w.WriteNumber("id", id);
            WriteAddedTokenFlags(w, piece.Text, special: piece.Kind != SentencePieceKind.UserDefined);
            w.WriteEndObject();
        }
        w.WriteEndArray();

        w.WriteStartObject("normalizer");
        w.WriteString("type", "Sequence");
        w.WriteStartArray("normalizers");
        w.WriteStartObject();
        w.WriteString("type", "Prepend");
        w.WriteString("prepend", SentencePieceVocabulary.SpaceSymbol);
        w.WriteEndObject();
        WriteReplace(w, " ", SentencePieceVocabulary.SpaceSymbol);
        w.WriteEndArray();
        w.WriteEndObject();
        w.WriteNull("pre_tokenizer");

        w.WriteStartObject("post_processor");
        w.WriteString("type", "TemplateProcessing");
        w.WriteStartArray("single");
        WriteTemplatePiece(w, "SpecialToken", bos, 0);
        WriteTemplatePiece(w, "Sequence", "A", 0);
        w.WriteEndArray();
        w.WriteStartArray("pair");
        WriteTemplatePiece(w, "SpecialToken", bos, 0);
        WriteTemplatePiece(w, "Sequence", "A", 0);
        WriteTemplatePiece(w, "SpecialToken", bos, 1);
        WriteTemplatePiece(w, "Sequence", "B", 1);
        w.WriteEndArray();
        w.WriteStartObject("special_tokens");
        w.WriteStartObject(bos);
        w.WriteString("id", bos);
        w.WriteStartArray("ids");
        w.WriteNumberValue(vocabulary.BosId.Value);
        w.WriteEndArray();
        w.WriteStartArray("tokens");
        w.WriteStringValue(bos);
        w.WriteEndArray();
        w.WriteEndObject();
        w.WriteEndObject();
        w.WriteEndObject();

        w.WriteStartObject("decoder");
        w.WriteString("type", "Sequence");
        w.WriteStartArray("decoders");
        WriteReplace(w, SentencePieceVocabulary.SpaceSymbol, " ");
        w.WriteStartObject();
        w.WriteString("type", "ByteFallback");
        w.WriteEndObject();
        w.WriteStartObject();
        w.WriteString("type", "Fuse");
        w.WriteEndObject();
        w.WriteStartObject();
        w.WriteString("type", "Strip");
        w.WriteString("content", " ");
        w.WriteNumber("start", 1);
        w.WriteNumber("stop", 0);
        w.WriteEndObject();
        w.WriteEndArray();
        w.WriteEndObject();

        w.WriteStartObject("model");
        w.WriteString("type", "BPE");
        w.WriteNull("dropout");
        w.WriteString("unk_token", vocabulary.Pieces[vocabulary.UnknownId].Text);
        w.WriteNull("continuing_subword_prefix");
        w.WriteNull("end_of_word_suffix");
        w.WriteBoolean("fuse_unk", true);
        w.WriteBoolean("byte_fallback", true);
        w.WriteBoolean("ignore_merges", false);
        w.WriteStartObject("vocab");
        for (int id = 0; id < vocabulary.Count; id++)
        {
            w.WriteNumber(vocabulary.Pieces[id].Text, id);
        }
        w.WriteEndObject();
        w.WriteStartArray("merges");
        foreach (var (left, right) in vocabulary.BuildMerges())
        {
            // The pair form: a SentencePiece piece may hold a space only in principle, but this form is never ambiguous.
            w.WriteStartArray();
            w.WriteStringValue(left);
            w.WriteStringValue(right);
            w.WriteEndArray();
        }
        w.WriteEndArray();
        w.WriteEndObject();
        w.WriteEndObject();
    }

    private static void WriteSentencePieceTokenizerConfig(Utf8JsonWriter w, SentencePieceVocabulary vocabulary, int? modelMaxLength)
    {
        w.WriteStartObject();
        w.WriteBoolean("add_bos_token", true);
        w.WriteBoolean("add_eos_token", false);
        w.WriteStartObject("added_tokens_decoder");
        foreach (var (id, piece) in AddedPieces(vocabulary))
        {
            w.WriteStartObject(id.ToString(System.Globalization.CultureInfo.InvariantCulture));
            WriteAddedTokenFlags(w, piece.Text, special: piece.Kind != SentencePieceKind.UserDefined);
            w.WriteEndObject();
        }
        w.WriteEndObject();
        WriteStringOrNull(w, "bos_token", vocabulary.Pieces[vocabulary.BosId!.Value].Text);
        WriteStringOrNull(w, "eos_token", vocabulary.EosId is int eos ? vocabulary.Pieces[eos].Text : null);
        w.WriteString("unk_token", vocabulary.Pieces[vocabulary.UnknownId].Text);
        w.WriteBoolean("clean_up_tokenization_spaces", false);
        if (modelMaxLength is int max) w.WriteNumber("model_max_length", max);
        w.WriteString("tokenizer_class", "PreTrainedTokenizerFast");
        w.WriteEndObject();
    }

    private static void WriteReplace(Utf8JsonWriter w, string pattern, string content)
    {
        w.WriteStartObject();
        w.WriteString("type", "Replace");
        w.WriteStartObject("pattern");
        w.WriteString("String", pattern);
        w.WriteEndObject();
        w.WriteString("content", content);
        w.WriteEndObject();
    }

    private static void WriteFile(string path, Action<Utf8JsonWriter> write)
    {
        using var stream = new MemoryStream();
        using (var writer = new Utf8JsonWriter(stream, WriterOptions))
        {
            write(writer);
        }

        File.WriteAllBytes(path, stream.ToArray());
    }

    private static void WriteTokenizerJson(Utf8JsonWriter w, ByteLevelBpeModel model, string? templateBos)
    {
        w.WriteStartObject();
        w.WriteString("version", "1.0");
        w.WriteNull("truncation");
        w.WriteNull("padding");

        w.WriteStartArray("added_tokens");
        foreach (string special in model.SpecialTokens)
        {
            w.WriteStartObject();
            w.WriteNumber("id", model.IdOf(special)!.Value);
            WriteAddedTokenFlags(w, special);
            w.WriteEndObject();
        }

        w.WriteEndArray();

        w.WriteNull("normalizer");
        w.WriteStartObject("pre_tokenizer");
        WriteByteLevelOptions(w, trimOffsets: true);
        w.WriteEndObject();

        w.WriteStartObject("post_processor");
        if (templateBos is null)
        {
            WriteByteLevelOptions(w, trimOffsets: false);
        }
        else
        {
            int bosId = model.IdOf(templateBos)!.Value;
            w.WriteString("type", "TemplateProcessing");
            w.WriteStartArray("single");
            WriteTemplatePiece(w, "SpecialToken", templateBos, 0);
            WriteTemplatePiece(w, "Sequence", "A", 0);
            w.WriteEndArray();
            w.WriteStartArray("pair");
            WriteTemplatePiece(w, "SpecialToken", templateBos, 0);
            WriteTemplatePiece(w, "Sequence", "A", 0);
            WriteTemplatePiece(w, "SpecialToken", templateBos, 1);
            WriteTemplatePiece(w, "Sequence", "B", 1);
            w.WriteEndArray();
            w.WriteStartObject("special_tokens");
            w.WriteStartObject(templateBos);
            w.WriteString("id", templateBos);
            w.WriteStartArray("ids");
            w.WriteNumberValue(bosId);
            w.WriteEndArray();
            w.WriteStartArray("tokens");
            w.WriteStringValue(templateBos);
            w.WriteEndArray();
            w.WriteEndObject();
            w.WriteEndObject();
        }

        w.WriteEndObject();

        w.WriteStartObject("decoder");
        WriteByteLevelOptions(w, trimOffsets: true);
        w.WriteEndObject();

        w.WriteStartObject("model");
        w.WriteString("type", "BPE");
        w.WriteNull("dropout");
        w.WriteNull("unk_token");
        w.WriteNull("continuing_subword_prefix");
        w.WriteNull("end_of_word_suffix");
        w.WriteBoolean("fuse_unk", false);
        w.WriteBoolean("byte_fallback", false);
        w.WriteBoolean("ignore_merges", false);
        w.WriteStartObject("vocab");
        for (int id = 0; id < model.Tokens.Count; id++)
        {
            w.WriteNumber(model.Tokens[id], id);
        }

        w.WriteEndObject();
        w.WriteStartArray("merges");
        foreach (BpeMerge merge in model.Merges)
        {
            // Byte-level tokens never hold a space, so the classic "left right" form is unambiguous and read by every version.
            w.WriteStringValue(merge.Left + " " + merge.Right);
        }

        w.WriteEndArray();
        w.WriteEndObject();

        w.WriteEndObject();
    }

    private static void WriteTokenizerConfig(Utf8JsonWriter w, ByteLevelBpeModel model, string? bosToken, string? eosToken, bool addBosToken)
    {
        w.WriteStartObject();
        w.WriteBoolean("add_bos_token", addBosToken);
        w.WriteBoolean("add_eos_token", false);
        w.WriteBoolean("add_prefix_space", false);
        w.WriteStartObject("added_tokens_decoder");
        foreach (string special in model.SpecialTokens)
        {
            w.WriteStartObject(model.IdOf(special)!.Value.ToString(System.Globalization.CultureInfo.InvariantCulture));
            WriteAddedTokenFlags(w, special);
            w.WriteEndObject();
        }

        w.WriteEndObject();
        WriteStringOrNull(w, "bos_token", bosToken);
        WriteStringOrNull(w, "eos_token", eosToken);
        w.WriteNull("unk_token");
        w.WriteBoolean("clean_up_tokenization_spaces", false);
        w.WriteString("tokenizer_class", "PreTrainedTokenizerFast");
        w.WriteEndObject();
    }

    private static void WriteAddedTokenFlags(Utf8JsonWriter w, string content, bool special = true)
    {
        w.WriteString("content", content);
        w.WriteBoolean("single_word", false);
        w.WriteBoolean("lstrip", false);
        w.WriteBoolean("rstrip", false);
        w.WriteBoolean("normalized", false);
        w.WriteBoolean("special", special);
    }

    private static void WriteByteLevelOptions(Utf8JsonWriter w, bool trimOffsets)
    {
        w.WriteString("type", "ByteLevel");
        w.WriteBoolean("add_prefix_space", false);
        w.WriteBoolean("trim_offsets", trimOffsets);
        w.WriteBoolean("use_regex", true);
    }

    private static void WriteTemplatePiece(Utf8JsonWriter w, string kind, string id, int typeId)
    {
        w.WriteStartObject();
        w.WriteStartObject(kind);
        w.WriteString("id", id);
        w.WriteNumber("type_id", typeId);
        w.WriteEndObject();
        w.WriteEndObject();
    }

    private static void WriteStringOrNull(Utf8JsonWriter w, string name, string? value)
    {
        if (value is null)
        {
            w.WriteNull(name);
        }
        else
        {
            w.WriteString(name, value);
        }
    }
}
