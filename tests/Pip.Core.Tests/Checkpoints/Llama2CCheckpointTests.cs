using System.Runtime.InteropServices;
using Pip.Checkpoints;
using static Pip.Core.Tests.Checkpoints.Llama2CFixtures;

namespace Pip.Core.Tests.Checkpoints;

public sealed class Llama2CCheckpointTests : IDisposable
{
    private static readonly string[] HeaderNames = ["dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len"];

    private readonly TempFolder _dir = new();

    public void Dispose() => _dir.Dispose();

    private static CheckpointFormatException OpenFails(string path)
    {
        var act = () => Llama2CCheckpoint.Open(path);
        var ex = act.Should().Throw<CheckpointFormatException>().Which;
        ex.FilePath.Should().Be(Path.GetFullPath(path));
        ex.Message.Should().Contain(Path.GetFullPath(path));
        return ex;
    }

    [Fact]
    public void Open_TinyModel_ReadsHeaderAndGivesTheLlamaConfig()
    {
        var path = WriteModel(_dir.File("m.bin"), dim: 8, hidden: 12, layers: 2, heads: 2, kvHeads: 1, vocab: 6, seqLen: 4);

        var checkpoint = Llama2CCheckpoint.Open(path);

        checkpoint.Header.Should().Be(new Llama2CHeader(8, 12, 2, 2, 1, 6, true, 4));
        checkpoint.Header.HeadSize.Should().Be(4);
        checkpoint.Header.KeyValueDim.Should().Be(4);
        checkpoint.Header.FileLength.Should().Be(new FileInfo(path).Length);
        checkpoint.Header.ParameterCount.Should().Be(6 * 8 + 2 * (2 * 8 + 2 * 64 + 2 * 32 + 3 * 96) + 8);
        var config = checkpoint.Header.ToLlamaConfig();
        config.Architecture.Should().Be("LlamaForCausalLM");
        (config.HiddenSize, config.IntermediateSize, config.NumHiddenLayers, config.NumAttentionHeads, config.NumKeyValueHeads, config.HeadDim)
            .Should().Be((8, 12, 2, 2, 1, 4));
        (config.VocabSize, config.MaxPositionEmbeddings, config.TieWordEmbeddings).Should().Be((6, 4, true));
        (config.RmsNormEps, config.RopeTheta, config.BosTokenId).Should().Be((1e-5, 10000.0, 1));
        config.EosTokenIds.Should().Equal(2);
    }

    [Fact]
    public void Open_NegativeVocabSize_MeansAnUntiedClassifier()
    {
        var path = WriteModel(_dir.File("u.bin"), untied: true);

        var header = Llama2CCheckpoint.Open(path).Header;

        header.SharedClassifier.Should().BeFalse();
        header.VocabSize.Should().Be(6);
        header.ToLlamaConfig().TieWordEmbeddings.Should().BeFalse();
    }

    [Fact]
    public void Open_FileShorterThanTheHeader_Throws()
    {
        var path = WriteHeaderOnly(_dir.File("short.bin"), [8, 12, 2, 2, 1]);

        OpenFails(path).Message.Should().Contain("20 bytes").And.Contain("header");
    }

    [Theory]
    [InlineData(0, 0)]
    [InlineData(1, -12)]
    [InlineData(2, 0)]
    [InlineData(3, -2)]
    [InlineData(4, 0)]
    [InlineData(5, 0)]
    [InlineData(6, -4)]
    public void Open_NonPositiveDimension_ThrowsNamingIt(int index, int value)
    {
        int[] header = [8, 12, 2, 2, 1, 6, 4];
        header[index] = value;
        var ex = OpenFails(WriteHeaderOnly(_dir.File("bad.bin"), header));

        ex.Field.Should().Be(HeaderNames[index]);
        ex.Message.Should().Contain("must be positive");
    }

    [Fact]
    public void Open_HugeDimension_ThrowsNamingIt()
    {
        var ex = OpenFails(WriteHeaderOnly(_dir.File("huge.bin"), [8, 12, 2, 2, 1, 6, int.MaxValue]));

        ex.Field.Should().Be("seq_len");
        ex.Message.Should().Contain("plausibly");
    }

    [Fact]
    public void Open_DimensionsTooLargeForAnyFile_Throws()
    {
        const int big = Llama2CCheckpoint.MaxDimension;

        OpenFails(WriteHeaderOnly(_dir.File("overflow.bin"), [big, big, big, 2, 1, big, big])).Message.Should().Contain("more weights than a file can hold");
    }

    [Fact]
    public void Open_HeadsNotDividingDim_Throws()
    {
        var ex = OpenFails(WriteHeaderOnly(_dir.File("heads.bin"), [8, 12, 2, 3, 1, 6, 4]));

        ex.Message.Should().Contain("n_heads 3 does not divide dim 8");
    }

    [Fact]
    public void Open_KeyValueHeadsNotDividingHeads_Throws()
    {
        var ex = OpenFails(WriteHeaderOnly(_dir.File("kv.bin"), [16, 12, 2, 4, 3, 6, 4]));

        ex.Message.Should().Contain("n_kv_heads 3 does not divide n_heads 4");
    }

    [Fact]
    public void Open_OddHeadSize_Throws()
    {
        OpenFails(WriteHeaderOnly(_dir.File("odd.bin"), [6, 12, 2, 2, 1, 6, 4])).Message.Should().Contain("odd");
    }

    [Fact]
    public void Open_TruncatedFile_ThrowsWithBothSizes()
    {
        var path = WriteModel(_dir.File("t.bin"));
        var bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..^4]);

        OpenFails(path).Message.Should().Contain($"has {bytes.Length - 4} bytes").And.Contain($"describes {bytes.Length}").And.Contain("truncated");
    }

    [Fact]
    public void Open_TrailingBytesAfterTheWeights_Throws()
    {
        var path = WriteModel(_dir.File("g.bin"));
        File.AppendAllText(path, "garbage!");

        OpenFails(path).Message.Should().Contain("8 bytes after");
    }

    [Fact]
    public void Open_Version1Export_IsRefusedWithTheReason()
    {
        var path = WriteHeaderOnly(_dir.File("v1.bin"), [0x616b3432, 1, 8, 12, 2, 2, 1, 6], extraBytes: 64);

        OpenFails(path).Message.Should().Contain("ak42").And.Contain("version 0");
    }

    [Fact]
    public void Open_MissingFile_ThrowsFileNotFound()
    {
        var act = () => Llama2CCheckpoint.Open(_dir.File("none.bin"));

        act.Should().Throw<FileNotFoundException>().WithMessage($"*{_dir.File("none.bin")}*");
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void GetTensors_TinyModel_MapsLlama2COrderToHfNamesAndPermutesQueryAndKeyRows(bool untied)
    {
        const int dim = 8, hidden = 12, layers = 2, heads = 2, kvHeads = 1, vocab = 6, seqLen = 4, hs = 4, kv = 4;
        var checkpoint = Llama2CCheckpoint.Open(WriteModel(_dir.File("m.bin"), dim, hidden, layers, heads, kvHeads, vocab, seqLen, untied));
        var output = _dir.File("m.safetensors");
        SafeTensorsWriter.Write(output, checkpoint.GetTensors());
        using var file = SafeTensorsFile.Open(output);
        float[] Get(string name) => MemoryMarshal.Cast<byte, float>(file.GetBytes(name)).ToArray();
        static float[] Range(long start, long count) => Enumerable.Range(0, (int)count).Select(i => (float)(start + i)).ToArray();

        // Offsets (in floats) of llama2.c's arrays.
        long emb = 0, rmsAtt = vocab * dim, wq = rmsAtt + layers * dim, wk = wq + layers * dim * dim, wv = wk + layers * kv * dim;
        long wo = wv + layers * kv * dim, rmsFfn = wo + layers * dim * dim, w1 = rmsFfn + layers * dim, w2 = w1 + layers * hidden * dim;
        long w3 = w2 + layers * dim * hidden, rmsFinal = w3 + layers * hidden * dim, classifier = rmsFinal + dim + seqLen * hs;

        file.Tensors.Should().HaveCount(2 + 9 * layers + (untied ? 1 : 0));
        file.GetInfo("model.embed_tokens.weight").Shape.Should().Equal(vocab, dim);
        Get("model.embed_tokens.weight").Should().Equal(Range(emb, vocab * dim));
        Get("model.layers.1.input_layernorm.weight").Should().Equal(Range(rmsAtt + dim, dim));
        Get("model.layers.1.self_attn.v_proj.weight").Should().Equal(Range(wv + kv * dim, kv * dim));
        Get("model.layers.0.self_attn.o_proj.weight").Should().Equal(Range(wo, dim * dim));
        Get("model.layers.1.post_attention_layernorm.weight").Should().Equal(Range(rmsFfn + dim, dim));
        Get("model.layers.1.mlp.gate_proj.weight").Should().Equal(Range(w1 + hidden * dim, hidden * dim));
        file.GetInfo("model.layers.1.mlp.down_proj.weight").Shape.Should().Equal(dim, hidden);
        Get("model.layers.1.mlp.down_proj.weight").Should().Equal(Range(w2 + dim * hidden, dim * hidden));
        Get("model.layers.0.mlp.up_proj.weight").Should().Equal(Range(w3, hidden * dim));
        Get("model.norm.weight").Should().Equal(Range(rmsFinal, dim));
        if (untied) Get("lm_head.weight").Should().Equal(Range(classifier, vocab * dim));
        else file.Contains("lm_head.weight").Should().BeFalse();

        // Rotate-half order: within each head, the even rows of llama2.c's interleaved pairs come first, then the odd rows.
        int[] order = [0, 2, 1, 3];
        float[] Permuted(long start, int headCount) =>
            [.. Enumerable.Range(0, headCount).SelectMany(h => order.SelectMany(o => Range(start + (h * hs + o) * dim, dim)))];
        file.GetInfo("model.layers.1.self_attn.q_proj.weight").Shape.Should().Equal(heads * hs, dim);
        Get("model.layers.1.self_attn.q_proj.weight").Should().Equal(Permuted(wq + dim * dim, heads));
        file.GetInfo("model.layers.0.self_attn.k_proj.weight").Shape.Should().Equal(kv, dim);
        Get("model.layers.0.self_attn.k_proj.weight").Should().Equal(Permuted(wk, kvHeads));
    }
}
