using Pip.Tokenization;

namespace Pip.Core.Tests.Tokenization;

public sealed class BpeTrainerTests : IDisposable
{
    private readonly TempFolder _temp = new();

    public void Dispose() => _temp.Dispose();

    private static readonly string[] Corpus =
    [
        "The quick brown fox jumps over the lazy dog.",
        "The dog sleeps; the fox runs. Then the fox sleeps too.",
        "Over and over, the quick fox and the lazy dog play in the sun.",
        "Numbers like 1234 and 5678 appear, and so do the words the, then, there.",
    ];

    [Fact]
    public void Train_TinyCorpus_MergesMostFrequentPairsInOrder()
    {
        // Words: "ab" x1, "Ġab" x2, "Ġcd" x1. Pairs: (a,b)=3, (Ġ,a)=2, (Ġ,c)=1, (c,d)=1 -> merge "a b";
        // then (Ġ,ab)=2 -> merge "Ġ ab"; every other pair occurs once, below minFrequency 2.
        ByteLevelBpeModel model = new BpeTrainer(vocabSize: 1000, minFrequency: 2).Train(["ab ab ab cd"]);
        model.Merges.Should().Equal(new BpeMerge("a", "b"), new BpeMerge("Ġ", "ab"));
        model.Tokens.Should().HaveCount(258);
        model.Tokens[256].Should().Be("ab");
        model.Tokens[257].Should().Be("Ġab");
        model.Tokens[0].Should().Be("Ā");
    }

    [Fact]
    public void Train_SameInput_SameModel()
    {
        var trainer = new BpeTrainer(vocabSize: 320, minFrequency: 2, specialTokens: ["<|endoftext|>"]);
        ByteLevelBpeModel a = trainer.Train(Corpus);
        ByteLevelBpeModel b = trainer.Train(Corpus);
        a.Tokens.Should().Equal(b.Tokens);
        a.Merges.Should().Equal(b.Merges);
    }

    [Fact]
    public void Train_VocabSizeReached_StopsThere()
    {
        ByteLevelBpeModel model = new BpeTrainer(vocabSize: 270, minFrequency: 1).Train(Corpus);
        model.Tokens.Should().HaveCount(270);
        model.Merges.Should().HaveCount(14);
    }

    [Fact]
    public void Train_SpecialTokensInText_TakeFirstIdsAndAreNotLearned()
    {
        string[] texts = ["a<|eot|>b<|eot|>a<|eot|>b<|eot|>a<|eot|>b<|eot|>"];
        ByteLevelBpeModel model = new BpeTrainer(vocabSize: 400, minFrequency: 2, specialTokens: ["<|eot|>"]).Train(texts);
        model.Tokens[0].Should().Be("<|eot|>");
        model.SpecialTokens.Should().Equal("<|eot|>");
        model.Merges.Should().BeEmpty("with the special token cut out, every word is a single character");
    }

    [Fact]
    public void TrainWriteLoad_RoundTripsAndCompresses()
    {
        ByteLevelBpeModel model = new BpeTrainer(vocabSize: 400, minFrequency: 2, specialTokens: ["<|endoftext|>"]).Train(Corpus);
        HfTokenizerWriter.WriteByteLevelBpe(_temp.Path, model, bosToken: "<|endoftext|>", eosToken: "<|endoftext|>", addBosToken: true);
        HfTokenizer tok = HfTokenizer.Load(_temp.Path);

        int[] ids = tok.Encode(Corpus[0]);
        ids[0].Should().Be(0);
        ids.Length.Should().BeLessThan(Corpus[0].Length / 2);
        tok.Decode(ids).Should().Be(Corpus[0]);
        foreach (string unseen in new[] { "Zebra! ÄÖÜ 日本 😀", "  spaced\n\tout  " })
        {
            tok.Decode(tok.Encode(unseen)).Should().Be(unseen);
        }
    }
}
