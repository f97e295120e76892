using Pip.Checkpoints;
using Pip.Tokenization;
using static Pip.Core.Tests.Checkpoints.Llama2CFixtures;

namespace Pip.Core.Tests.Tokenization;

public sealed class SentencePieceVocabularyTests : IDisposable
{
    private readonly Checkpoints.TempFolder _dir = new();

    public void Dispose() => _dir.Dispose();

    private static CheckpointFormatException Fails(Action act, string path)
    {
        var ex = act.Should().Throw<CheckpointFormatException>().Which;
        ex.FilePath.Should().Be(Path.GetFullPath(path));
        ex.Message.Should().Contain(Path.GetFullPath(path));
        return ex;
    }

    [Fact]
    public void LoadLlama2C_SmallFile_RestoresSentencePieceNamesAndKinds()
    {
        var path = WriteTokenizer(_dir.File("tok.bin"), [.. SixTokens.Take(3), ("<0x0A>", 0), (" a", -1), ("b", -2)]);

        var vocabulary = SentencePieceVocabulary.LoadLlama2C(path, 6);

        vocabulary.Pieces.Select(p => p.Text).Should().Equal("<unk>", "<s>", "</s>", "<0x0A>", "▁a", "b");
        vocabulary.Pieces.Select(p => p.Kind).Should().Equal(SentencePieceKind.Unknown, SentencePieceKind.Control, SentencePieceKind.Control,
            SentencePieceKind.Byte, SentencePieceKind.Normal, SentencePieceKind.Normal);
        vocabulary.Pieces[5].Score.Should().Be(-2);
        (vocabulary.UnknownId, vocabulary.BosId, vocabulary.EosId).Should().Be((0, 1, 2));
        vocabulary.IdOf("▁a").Should().Be(4);
    }

    [Fact]
    public void LoadLlama2C_TruncatedFile_Throws()
    {
        var path = WriteTokenizer(_dir.File("tok.bin"), SixTokens);
        var bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..^2]);

        Fails(() => SentencePieceVocabulary.LoadLlama2C(path, 6), path).Message.Should().Contain("inside token 5 of 6").And.Contain("truncated");
    }

    [Fact]
    public void LoadLlama2C_FewerTokensThanTheModel_Throws()
    {
        var path = WriteTokenizer(_dir.File("tok.bin"), SixTokens);

        Fails(() => SentencePieceVocabulary.LoadLlama2C(path, 7), path).Message.Should().Contain("inside token 6 of 7");
    }

    [Fact]
    public void LoadLlama2C_MoreTokensThanTheModel_Throws()
    {
        var path = WriteTokenizer(_dir.File("tok.bin"), SixTokens);

        Fails(() => SentencePieceVocabulary.LoadLlama2C(path, 5), path).Message.Should().Contain("bytes follow token 4").And.Contain("vocab_size 5");
    }

    [Fact]
    public void LoadLlama2C_TokenLongerThanMaxTokenLength_Throws()
    {
        var path = WriteTokenizer(_dir.File("tok.bin"), SixTokens, maxTokenLength: 2);

        Fails(() => SentencePieceVocabulary.LoadLlama2C(path, 6), path).Message.Should().Contain("token 0 has length 5");
    }

    [Fact]
    public void LoadLlama2C_RepeatedPiece_Throws()
    {
        var path = WriteTokenizer(_dir.File("tok.bin"), [.. SixTokens.Take(5), (" a", -5)]);

        Fails(() => SentencePieceVocabulary.LoadLlama2C(path, 6), path).Message.Should().Contain("repeats token 3");
    }

    [Fact]
    public void LoadSentencePieceModel_Tok512_EqualsTheLlama2CExport()
    {
        var fromModel = SentencePieceVocabulary.LoadSentencePieceModel(Stories260KSource("tok512.model"));
        var fromBin = SentencePieceVocabulary.LoadLlama2C(Stories260KSource("tok512.bin"), 512);

        fromModel.Count.Should().Be(512);
        fromModel.Pieces.Should().Equal(fromBin.Pieces);
        (fromModel.UnknownId, fromModel.BosId, fromModel.EosId).Should().Be((0, 1, 2));
        fromModel.Pieces.Count(p => p.Kind == SentencePieceKind.Byte).Should().Be(256);
        fromModel.Pieces[3].Text.Should().Be("<0x00>");
    }

    [Fact]
    public void LoadSentencePieceModel_TruncatedFile_Throws()
    {
        var path = _dir.File("tok.model");
        File.WriteAllBytes(path, File.ReadAllBytes(Stories260KSource("tok512.model"))[..3000]);

        Fails(() => SentencePieceVocabulary.LoadSentencePieceModel(path), path).Message.Should().Contain("truncated");
    }

    [Fact]
    public void LoadSentencePieceModel_UnigramModel_IsRefused()
    {
        // One piece "a" (field 1: piece, score -1, type NORMAL) and a trainer spec with model_type = 1 (UNIGRAM).
        byte[] piece = [0x0A, 0x01, (byte)'a', 0x15, 0x00, 0x00, 0x80, 0xBF, 0x18, 0x01];
        byte[] proto = [0x0A, (byte)piece.Length, .. piece, 0x12, 0x02, 0x18, 0x01];
        var path = _dir.File("uni.model");
        File.WriteAllBytes(path, proto);

        var ex = Fails(() => SentencePieceVocabulary.LoadSentencePieceModel(path), path);

        ex.Message.Should().Contain("UNIGRAM");
        ex.Field.Should().Be("trainer_spec.model_type");
    }

    [Fact]
    public void Load_ModelFileWithAnotherVocabularySize_Throws()
    {
        var path = Stories260KSource("tok512.model");

        Fails(() => SentencePieceVocabulary.Load(path, 513), path).Message.Should().Contain("512 pieces but the model's vocab_size is 513");
    }

    [Fact]
    public void BuildMerges_SmallVocabulary_RanksByScoreThenLongerLeftPart()
    {
        // "▁ab" splits as "▁a"+"b" and "▁"+"ab"; both merges share its score, the longer left part ranks first.
        var path = WriteTokenizer(_dir.File("tok.bin"), [.. SixTokens.Take(3), (" ", -1), ("a", -2), ("b", -3), (" a", -4), ("ab", -5), (" ab", -6)]);
        var vocabulary = SentencePieceVocabulary.LoadLlama2C(path, 9);

        vocabulary.BuildMerges().Should().Equal(("▁", "a"), ("a", "b"), ("▁a", "b"), ("▁", "ab"));
    }

    [Fact]
    public void HfTokenizer_ConvertedStories260K_GivesTheIdsOfHuggingFaceTokenizers()
    {
        using var fixture = System.Text.Json.JsonDocument.Parse(File.ReadAllText(TransformersFixture));
        var tokenizer = HfTokenizer.Load(Stories260KFolder);
        var cases = fixture.RootElement.GetProperty("cases").EnumerateArray().ToList();

        cases.Should().HaveCountGreaterThan(5);
        foreach (var item in cases)
        {
            var text = item.GetProperty("text").GetString()!;
            var expected = item.GetProperty("hf_ids").EnumerateArray().Select(e => e.GetInt32()).ToArray();
            tokenizer.Encode(text, addBos: false).Should().Equal(expected, text);
            tokenizer.Encode(text).Should().Equal([1, .. expected], "BOS is added by default");
            if (!text.Contains('<')) tokenizer.Decode(expected).Should().Be(text);
        }
    }

    [Fact]
    public void HfTokenizer_ConvertedStories260K_AgreesWithLlama2CEncoderExceptOnSpelledOutSpecialTokens()
    {
        using var fixture = System.Text.Json.JsonDocument.Parse(File.ReadAllText(TransformersFixture));
        var tokenizer = HfTokenizer.Load(Stories260KFolder);

        foreach (var item in fixture.RootElement.GetProperty("cases").EnumerateArray())
        {
            var text = item.GetProperty("text").GetString()!;
            var llama2c = item.GetProperty("llama2c_ids").EnumerateArray().Select(e => e.GetInt32()).ToArray();
            if (text.Contains("<s>", StringComparison.Ordinal)) tokenizer.Encode(text, addBos: false).Should().NotEqual(llama2c, text);
            else tokenizer.Encode(text, addBos: false).Should().Equal(llama2c, text);
        }
    }
}
