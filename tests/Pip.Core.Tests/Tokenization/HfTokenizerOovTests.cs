using System.Text.Json;
using Pip.Tokenization;

namespace Pip.Core.Tests.Tokenization;

/// <summary>
/// Characters outside the vocabulary (emoji, CJK, newline, tab, accented letters) against the ids Hugging Face
/// <c>tokenizers</c> gives, for every BPE configuration: <c>unk_token</c> (fused or not), <c>byte_fallback</c>, and
/// neither (the character is dropped), SentencePiece-style (Prepend+Replace normalizer, or Metaspace) and byte-level.
/// The fixtures and ids are made by <c>Fixtures/Oov/make_oov_fixtures.py</c> (its output records the tokenizers version).
/// </summary>
public sealed class HfTokenizerOovTests
{
    private static readonly string Folder = Path.Combine(AppContext.BaseDirectory, "Tokenization", "Fixtures", "Oov");

    private static readonly Lazy<Reference> Expected = new(() =>
    {
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(Folder, "expected_ids.json")));
        var root = json.RootElement;
        var texts = root.GetProperty("texts").EnumerateArray().Select(t => t.GetString()!).ToArray();
        var cases = root.GetProperty("cases").EnumerateObject().ToDictionary(
            c => c.Name,
            c => c.Value.EnumerateArray().Select(ids => ids.EnumerateArray().Select(i => i.GetInt32()).ToArray()).ToArray());
        return new Reference(root.GetProperty("tokenizers_version").GetString()!, texts, cases);
    });

    /// <summary>Every case of <c>expected_ids.json</c> (one fixture folder each).</summary>
    public static TheoryData<string> Cases => new(Expected.Value.Cases.Keys.Order(StringComparer.Ordinal));

    [Theory]
    [MemberData(nameof(Cases))]
    public void Encode_OutOfVocabularyCharacters_MatchesHuggingFaceTokenizers(string name)
    {
        var reference = Expected.Value;
        var tokenizer = HfTokenizer.Load(Path.Combine(Folder, name));
        reference.Cases.Should().ContainKey(name);
        for (var i = 0; i < reference.Texts.Length; i++)
        {
            tokenizer.Encode(reference.Texts[i], addBos: false).Should().Equal(reference.Cases[name][i],
                $"tokenizers {reference.Version} encodes {JsonSerializer.Serialize(reference.Texts[i])} so with '{name}'");
        }
    }

    [Fact]
    public void Encode_NeitherUnkNorByteFallback_DropsTheCharacterAndMergesAcrossIt()
    {
        // "a☃b": ☃ is not in the vocabulary and there is no unk token: Hugging Face drops it, and "a" "b" then merge to "ab".
        var tokenizer = HfTokenizer.Load(Path.Combine(Folder, "spm-neither"));
        var ab = tokenizer.TokenToId("ab")!.Value;
        tokenizer.Encode("a☃b", addBos: false).Should().Equal(tokenizer.TokenToId("▁")!.Value, ab);
        tokenizer.Encode("hello\n", addBos: false).Should().Equal(tokenizer.Encode("hello", addBos: false));
    }

    [Fact]
    public void Expected_CoversEveryFixtureFolder()
    {
        var folders = Directory.GetDirectories(Folder).Select(Path.GetFileName).Order(StringComparer.Ordinal);
        Expected.Value.Cases.Keys.Order(StringComparer.Ordinal).Should().Equal(folders);
        Expected.Value.Cases.Keys.Should().Contain(["spm-unk", "spm-byte-fallback", "spm-neither", "metaspace-neither", "bytelevel-unk", "bytelevel-neither", "char-level"]);
    }

    private sealed record Reference(string Version, string[] Texts, Dictionary<string, int[][]> Cases);
}
