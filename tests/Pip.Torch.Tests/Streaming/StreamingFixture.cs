using Pip.Checkpoints;
using Pip.Tokenization;
using Pip.Torch.Streaming;
using Pip.Torch.Tests.Pruning;
using static TorchSharp.torch;

namespace Pip.Torch.Tests.Streaming;

/// <summary>A tiny random checkpoint written to a temporary folder (with a byte-level tokenizer), loaded in memory and opened for streaming.</summary>
internal sealed class StreamingFixture : IDisposable
{
    public StreamingFixture(long seed, int layers = 4, ScalarType stored = ScalarType.Float32, bool tied = false, long headChunkBytes = 256L << 20)
    {
        Folder = Path.Combine(Path.GetTempPath(), "pip-stream-" + Guid.NewGuid().ToString("N"));
        var config = PruningFixtures.Config(layers, tied: tied);
        using (var source = new TorchCausalLM(Models.TinyModels.Random(config, seed), PruningFixtures.Tokenizer))
            source.Save(Folder, stored);
        var bpe = new BpeTrainer(258, specialTokens: ["<s>", "</s>"]).Train([]);
        var tokenizerFolder = Folder + "-tok";
        HfTokenizerWriter.WriteByteLevelBpe(tokenizerFolder, bpe, "<s>", "</s>", addBosToken: true);
        foreach (var file in Directory.GetFiles(tokenizerFolder)) File.Copy(file, Path.Combine(Folder, Path.GetFileName(file)));
        Directory.Delete(tokenizerFolder, recursive: true);
        InMemory = TorchCausalLM.Load(Folder, ScalarType.Float32);
        Streamed = StreamedCausalLM.Open(Folder, new StreamingOptions { ComputeType = ScalarType.Float32, HeadChunkBytes = headChunkBytes });
    }

    public string Folder { get; }

    public TorchCausalLM InMemory { get; }

    public StreamedCausalLM Streamed { get; }

    /// <summary>Head chunks of 40 vocabulary rows of a hidden size of 16 in float32: the 258-token vocabulary takes 7 chunks.</summary>
    public const long SmallHeadChunk = 40 * 16 * 4;

    public void Dispose()
    {
        InMemory.Dispose();
        Streamed.Dispose();
        if (Directory.Exists(Folder)) Directory.Delete(Folder, recursive: true);
    }
}
