using System.Text.Json;
using Pip.Tokenization;

namespace Pip.Core.Tests.Tokenization;

public sealed class HfTokenizerWriterTests : IDisposable
{
    private readonly TempFolder _temp = new();

    public void Dispose() => _temp.Dispose();

    /// <summary>The GPT-2-style fixture's vocabulary as a model: bytes, the fixture merges, then &lt;|endoftext|&gt; (id 266).</summary>
    private static ByteLevelBpeModel FixtureModel()
    {
        var tokens = TokenizerFixtures.Gpt2ByteChars().Select(c => c.ToString()).ToList();
        var merges = new List<BpeMerge>();
        foreach ((string left, string right) in TokenizerFixtures.Gpt2Merges)
        {
            tokens.Add(left + right);
            merges.Add(new BpeMerge(left, right));
        }

        tokens.Add("<|endoftext|>");
        return new ByteLevelBpeModel(tokens, merges, ["<|endoftext|>"]);
    }

    [Fact]
    public void WriteThenLoad_FixtureVocabulary_EncodesAsTheHandWrittenFixture()
    {
        HfTokenizerWriter.WriteByteLevelBpe(_temp.Path, FixtureModel(), bosToken: "<|endoftext|>", eosToken: "<|endoftext|>");
        HfTokenizer written = HfTokenizer.Load(_temp.Path);
        HfTokenizer fixture = HfTokenizer.Load(TokenizerFixtures.Write(Path.Combine(_temp.Path, "fixture"), TokenizerFixtures.Gpt2Style(), TokenizerFixtures.Gpt2Config()));

        written.Encode("hello world", addBos: false).Should().Equal(259, 264);
        foreach (string text in new[] { "hello world", "a   b\nhell", "Ünïcödé 😀", "x<|endoftext|>y" })
        {
            written.Encode(text, addBos: false).Should().Equal(fixture.Encode(text, addBos: false), text);
            written.Decode(written.Encode(text, addBos: false), skipSpecialTokens: false).Should().Be(text);
        }

        written.BosTokenId.Should().Be(266);
        written.EosTokenId.Should().Be(266);
        written.AddBosByDefault.Should().BeFalse();
    }

    [Fact]
    public void Write_AddBosToken_WritesConfigAndTemplate()
    {
        HfTokenizerWriter.WriteByteLevelBpe(_temp.Path, FixtureModel(), bosToken: "<|endoftext|>", addBosToken: true);
        HfTokenizer.Load(_temp.Path).Encode("hello").Should().Equal(266, 259);

        // Without tokenizer_config.json the TemplateProcessing post-processor alone says the same.
        File.Delete(Path.Combine(_temp.Path, "tokenizer_config.json"));
        HfTokenizer fromTemplate = HfTokenizer.Load(_temp.Path);
        fromTemplate.AddBosByDefault.Should().BeTrue();
        fromTemplate.Encode("hello").Should().Equal(266, 259);

        using JsonDocument json = JsonDocument.Parse(File.ReadAllText(Path.Combine(_temp.Path, "tokenizer.json")));
        json.RootElement.GetProperty("model").GetProperty("merges")[0].GetString().Should().Be("h e");
        json.RootElement.GetProperty("model").GetProperty("vocab").GetProperty("Ġworld").GetInt32().Should().Be(264);
    }

    [Fact]
    public void Write_BosNotSpecial_Throws()
    {
        FluentActions.Invoking(() => HfTokenizerWriter.WriteByteLevelBpe(_temp.Path, FixtureModel(), bosToken: "hello"))
            .Should().Throw<ArgumentException>().WithMessage("*hello*special*");
    }

    [Fact]
    public void ByteLevelBpeModel_MissingByteOrBadMerge_Throws()
    {
        var tokens = TokenizerFixtures.Gpt2ByteChars().Select(c => c.ToString()).ToList();
        FluentActions.Invoking(() => new ByteLevelBpeModel(tokens.Skip(1).ToList(), []))
            .Should().Throw<ArgumentException>().WithMessage("*byte 0*");
        FluentActions.Invoking(() => new ByteLevelBpeModel(tokens, [new BpeMerge("a", "b")]))
            .Should().Throw<ArgumentException>().WithMessage("*'ab'*");
    }
}
