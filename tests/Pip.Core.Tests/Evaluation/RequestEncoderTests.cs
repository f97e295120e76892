using Pip.Evaluation;
using Pip.Tokenization;

namespace Pip.Core.Tests.Evaluation;

public sealed class RequestEncoderTests
{
    private const int Bos = 1;

    /// <summary>Greedy longest-match over a fixed vocabulary (ids 10, 11, …); BOS in front when special tokens are asked for.</summary>
    private static Func<string, bool, IReadOnlyList<int>> LongestMatch(params string[] vocab) => (text, special) =>
    {
        var ids = new List<int>();
        if (special) ids.Add(Bos);
        var i = 0;
        while (i < text.Length)
        {
            var best = -1;
            for (var v = 0; v < vocab.Length; v++)
            {
                if (string.CompareOrdinal(text, i, vocab[v], 0, vocab[v].Length) == 0 && (best < 0 || vocab[v].Length > vocab[best].Length)) best = v;
            }
            if (best < 0) throw new InvalidOperationException($"No token for '{text[i..]}'.");
            ids.Add(10 + best);
            i += vocab[best].Length;
        }
        return ids;
    };

    private static readonly string[] Words = ["Answer", ":", " yes", " no", " ", "yes", "no", "\n"];

    private static int Id(string token) => 10 + Array.IndexOf(Words, token);

    [Fact]
    public void Encode_SharedContext_SplitsWholeEncodingAtContextLength()
    {
        var encoder = new RequestEncoder(LongestMatch(Words), Bos);
        var encoded = encoder.Encode(new LoglikelihoodRequest("Answer:", " yes"));
        encoded.Context.Should().Equal(Bos, Id("Answer"), Id(":"));
        encoded.Continuation.Should().Equal(Id(" yes"));
    }

    [Fact]
    public void Encode_TrailingWhitespaceInContext_MovesOntoContinuation()
    {
        var encoder = new RequestEncoder(LongestMatch(Words), Bos);
        // Without the move, "Answer: " would end in a lone " " token and "yes" would be scored without its space.
        var encoded = encoder.Encode(new LoglikelihoodRequest("Answer: ", "yes"));
        encoded.Context.Should().Equal(Bos, Id("Answer"), Id(":"));
        encoded.Continuation.Should().Equal(Id(" yes"));

        RequestEncoder.MoveTrailingWhitespace("Answer:\n ", "yes").Should().Be(("Answer:", "\n yes"));
        RequestEncoder.MoveTrailingWhitespace("Answer:", " yes").Should().Be(("Answer:", " yes"));
        // Python's str.isspace counts the information separators U+001C–U+001F.
        RequestEncoder.MoveTrailingWhitespace("a\u001F", "b").Should().Be(("a", "\u001Fb"));
    }

    [Fact]
    public void Encode_TokenMergedAcrossBoundary_ContinuationIsWholeEncodingAfterContextLength()
    {
        // "xa" + "bc": the whole string encodes x|ab|c, the context alone x|a; lm-eval scores whole[len(context):] = c.
        var encoder = new RequestEncoder(LongestMatch("x", "a", "b", "c", "ab"), Bos);
        var encoded = encoder.Encode(new LoglikelihoodRequest("xa", "bc"));
        encoded.Context.Should().Equal(Bos, 10, 11);
        encoded.Continuation.Should().Equal(13); // "c"; the "ab" token (14) of the whole encoding is lost, as in lm-eval
    }

    [Fact]
    public void Encode_EmptyContext_UsesPrefixToken()
    {
        var encoder = new RequestEncoder(LongestMatch(Words), Bos);
        var encoded = encoder.Encode(new LoglikelihoodRequest("", "Answer: yes"));
        encoded.Context.Should().Equal(Bos);
        encoded.Continuation.Should().Equal(Id("Answer"), Id(":"), Id(" yes"));

        // A continuation that starts with the prefix token gives up its first token as the context.
        var prefixed = new RequestEncoder(LongestMatch(Words), Id("Answer")).Encode(new LoglikelihoodRequest("", "Answer: yes"));
        prefixed.Context.Should().Equal(Id("Answer"));
        prefixed.Continuation.Should().Equal(Id(":"), Id(" yes"));
    }

    [Fact]
    public void Encode_EmptyContextWithoutPrefixToken_Throws()
    {
        var encoder = new RequestEncoder(LongestMatch(Words), prefixTokenId: null);
        var act = () => encoder.Encode(new LoglikelihoodRequest("", " yes"));
        act.Should().Throw<ArgumentException>().WithMessage("*empty context*");
    }

    [Fact]
    public void Encode_EmptyContinuation_ThrowsNamingTheRequest()
    {
        var encoder = new RequestEncoder(LongestMatch(Words), Bos);
        var act = () => encoder.Encode(new LoglikelihoodRequest("Answer:", ""));
        act.Should().Throw<ArgumentException>().WithMessage("*continuation ''*no token*'Answer:'*");
    }

    [Fact]
    public void FromTokenizer_ByteLevelBpeWithBos_MatchesTokenizerEncodingAndAvoidsDoubleBos()
    {
        var folder = Path.Combine(Path.GetTempPath(), "pip-evalh-" + Guid.NewGuid().ToString("N"));
        try
        {
            var texts = Enumerable.Repeat("Question: is the sky blue?\nAnswer: yes. Answer: no. The answer is yes or no.", 20);
            var model = new BpeTrainer(300, specialTokens: ["<s>", "</s>"]).Train(texts);
            HfTokenizerWriter.WriteByteLevelBpe(folder, model, bosToken: "<s>", eosToken: "</s>", addBosToken: true);
            var tokenizer = HfTokenizer.Load(folder);
            var encoder = RequestEncoder.FromTokenizer(tokenizer);
            encoder.PrefixTokenId.Should().Be(tokenizer.BosTokenId);

            var encoded = encoder.Encode(new LoglikelihoodRequest("Question: is the sky blue?\nAnswer:", " yes"));
            var whole = tokenizer.Encode("Question: is the sky blue?\nAnswer: yes", addBos: true);
            var context = tokenizer.Encode("Question: is the sky blue?\nAnswer:", addBos: true);
            encoded.Context.Should().Equal(context);
            encoded.Continuation.Should().Equal(whole.Skip(context.Length));
            encoded.Context[0].Should().Be(tokenizer.BosTokenId!.Value);

            // A text that already starts with "<s>" gets no second BOS.
            var withBos = encoder.Encode(new LoglikelihoodRequest("<s>Answer:", " no"));
            withBos.Context.Should().Equal(tokenizer.Encode("<s>Answer:", addBos: false));
            withBos.Context.Count(id => id == tokenizer.BosTokenId).Should().Be(1);
        }
        finally
        {
            if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
        }
    }
}
