using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Pip.Tests.Perturbation;

public class ChatClientPerturberTests
{
    private const string Sentence = "The meeting starts later today, said the happy host.";
    private static readonly CalibrationSample Sample = new(3, Sentence);

    [Theory]
    [InlineData(PerturbationKind.Swap, "later", "alter")]
    [InlineData(PerturbationKind.Replace, "happy", "nappy")]
    [InlineData(PerturbationKind.Insert, "host", "ghost")]
    [InlineData(PerturbationKind.Delete, "starts", "stars")]
    public async Task PerturbAsync_ValidAnswer_RecordsTheOneEdit(PerturbationKind kind, string before, string after)
    {
        var client = FakeChatClient.Answers(Sentence.Replace(before, after, StringComparison.Ordinal));
        var fallback = new RecordingPerturber();
        IPerturber perturber = Perturbers.CreateChatClient(client, fallback, new ChatClientPerturberOptions { Kinds = [kind] });

        PerturbedSample twin = await perturber.PerturbAsync(Sample, seed: 1);

        twin.Original.Should().BeSameAs(Sample);
        twin.Text.Should().Be(Sentence.Replace(before, after, StringComparison.Ordinal));
        twin.Edits.Should().ContainSingle().Which.Should().Be(
            new PerturbationEdit(Sentence.IndexOf(before, StringComparison.Ordinal), before, after, kind, IsRealWord: true));
        EditAssertions.ShouldBeConsistent(twin);
        fallback.Calls.Should().Be(0);
        client.Requests.Should().ContainSingle();
    }

    [Fact]
    public async Task PerturbAsync_Request_CarriesSystemPromptKindTemplateTextSeedAndTemperature()
    {
        var client = FakeChatClient.Answers(Sentence.Replace("later", "alter", StringComparison.Ordinal));
        var options = new ChatClientPerturberOptions { Kinds = [PerturbationKind.Swap], ModelId = "tiny-model" };
        IPerturber perturber = Perturbers.CreateChatClient(client, new RecordingPerturber(), options);

        await perturber.PerturbAsync(Sample, seed: 42);

        FakeChatRequest request = client.Requests.Single();
        request.Messages.Should().HaveCount(2);
        request.Messages[0].Role.Should().Be(ChatRole.System);
        request.Messages[0].Text.Should().Be(ChatClientPerturberConstants.DefaultSystemPrompt);
        request.Prompt.Should().Be(ChatClientPerturberConstants.SwapTemplate.Replace("{text}", Sentence, StringComparison.Ordinal));
        request.Prompt.Should().Contain("\"later\" becomes \"alter\"");
        request.Options!.Seed.Should().Be(42);
        request.Options.Temperature.Should().Be(0f);
        request.Options.ModelId.Should().Be("tiny-model");
    }

    [Fact]
    public async Task PerturbAsync_CustomTemplate_ReplacesPlaceholderOnly()
    {
        var client = FakeChatClient.Answers(Sentence.Replace("later", "alter", StringComparison.Ordinal));
        var options = new ChatClientPerturberOptions
        {
            Kinds = [PerturbationKind.Swap],
            PromptTemplates = { [PerturbationKind.Swap] = "Swap letters {in braces}: {text}" },
        };

        await Perturbers.CreateChatClient(client, new RecordingPerturber(), options).PerturbAsync(Sample, 0);

        client.Requests.Single().Prompt.Should().Be("Swap letters {in braces}: " + Sentence);
    }

    [Theory]
    [InlineData("\"The meeting starts alter today, said the happy host.\"")]
    [InlineData("\u201CThe meeting starts alter today, said the happy host.\u201D")]
    [InlineData("```\nThe meeting starts alter today, said the happy host.\n```")]
    [InlineData("```text\nThe meeting starts alter today, said the happy host.\n```")]
    [InlineData("  The meeting starts alter today, said the happy host.\n")]
    public async Task PerturbAsync_AnswerInQuotesFenceOrSurroundingWhitespace_IsUnwrappedAndAccepted(string answer)
    {
        var fallback = new RecordingPerturber();
        IPerturber perturber = Perturbers.CreateChatClient(FakeChatClient.Answers(answer), fallback, new ChatClientPerturberOptions { Kinds = [PerturbationKind.Swap] });

        PerturbedSample twin = await perturber.PerturbAsync(Sample, 0);

        twin.Text.Should().Be("The meeting starts alter today, said the happy host.");
        fallback.Calls.Should().Be(0);
    }

    [Fact]
    public async Task PerturbAsync_QuotedAnswerWithStripQuotesOff_FallsBack()
    {
        var fallback = new RecordingPerturber();
        var options = new ChatClientPerturberOptions { Kinds = [PerturbationKind.Swap], StripQuotes = false, MaxAttempts = 1 };
        IPerturber perturber = Perturbers.CreateChatClient(FakeChatClient.Answers("\"The meeting starts alter today, said the happy host.\""), fallback, options);

        (await perturber.PerturbAsync(Sample, 0)).Text.Should().Be(RecordingPerturber.Marker);
    }

    [Fact]
    public async Task PerturbAsync_OriginalInLeadingAndTrailingWhitespace_KeepsItAndOffsets()
    {
        var sample = new CalibrationSample(0, "\n  The host waved.  ");
        IPerturber perturber = Perturbers.CreateChatClient(FakeChatClient.Answers("The ghost waved."), new RecordingPerturber(),
            new ChatClientPerturberOptions { Kinds = [PerturbationKind.Insert] });

        PerturbedSample twin = await perturber.PerturbAsync(sample, 0);

        twin.Text.Should().Be("\n  The ghost waved.  ");
        twin.Edits.Single().Offset.Should().Be(7);
        EditAssertions.ShouldBeConsistent(twin);
    }

    public static TheoryData<string, string> BadAnswers() => new()
    {
        { "two edits", "The meeting starts alter today, said the nappy host." },
        { "different sentence", "The conference begins soon, said the cheerful guest." },
        { "whitespace change", "The meeting starts alter  today, said the happy host." },
        { "line break", "The meeting starts alter today,\nsaid the happy host." },
        { "punctuation change", "The meeting starts alter today; said the happy host." },
        { "explained", "Sure! Here is the text: The meeting starts alter today, said the happy host." },
        { "quoted and explained", "\"The meeting starts alter today, said the happy host.\" (I swapped l and a in later.)" },
        { "unchanged", Sentence },
        { "empty", "" },
        { "blank", "  \n " },
        { "case only", "The meeting starts LATER today, said the happy host." },
        { "wrong kind", "The meeting starts liter today, said the happy host." },
        { "two-letter change", "The meeting starts loser today, said the happy host." },
        { "word too short", "Tho meeting starts later today, said the happy host." },
        { "split word", "The meeting starts lat er today, said the happy host." },
    };

    [Theory]
    [MemberData(nameof(BadAnswers))]
    public async Task PerturbAsync_InvalidAnswer_RetriesThenFallsBack(string why, string answer)
    {
        var client = FakeChatClient.Answers(answer);
        var fallback = new RecordingPerturber();
        var logs = new ListLogger();
        var options = new ChatClientPerturberOptions { Kinds = [why == "word too short" ? PerturbationKind.Replace : PerturbationKind.Swap], MaxAttempts = 2 };
        IPerturber perturber = Perturbers.CreateChatClient(client, fallback, options, logs);

        PerturbedSample twin = await perturber.PerturbAsync(Sample, seed: 5);

        twin.Text.Should().Be(RecordingPerturber.Marker, why);
        fallback.Calls.Should().Be(1);
        fallback.Seeds.Should().Equal(5);
        client.Requests.Should().HaveCount(2, "an invalid answer is asked again once (MaxAttempts 2)");
        client.Requests.Select(r => r.Options!.Seed).Should().Equal(5L, 6L);
        logs.Entries.Should().ContainSingle(e => e.Level == LogLevel.Warning).Which.Message.Should().Contain("Sample 3", Exactly.Once()).And.Contain("test-fallback");
    }

    [Fact]
    public async Task PerturbAsync_InvalidThenValidAnswer_AcceptsTheSecond()
    {
        var client = FakeChatClient.Answers("Here you go!", Sentence.Replace("later", "alter", StringComparison.Ordinal));
        var fallback = new RecordingPerturber();
        IPerturber perturber = Perturbers.CreateChatClient(client, fallback, new ChatClientPerturberOptions { Kinds = [PerturbationKind.Swap], MaxAttempts = 3 });

        PerturbedSample twin = await perturber.PerturbAsync(Sample, 0);

        twin.Edits.Single().After.Should().Be("alter");
        client.Requests.Should().HaveCount(2);
        fallback.Calls.Should().Be(0);
    }

    [Fact]
    public async Task PerturbAsync_ClientThrows_FallsBackAndLogsWarning()
    {
        var client = FakeChatClient.Throws(new HttpRequestException("connection refused"));
        var fallback = new RecordingPerturber();
        var logs = new ListLogger();
        IPerturber perturber = Perturbers.CreateChatClient(client, fallback, new ChatClientPerturberOptions { MaxAttempts = 2 }, logs);

        PerturbedSample twin = await perturber.PerturbAsync(Sample, 0);

        twin.Text.Should().Be(RecordingPerturber.Marker);
        client.Requests.Should().HaveCount(2);
        logs.Entries.Where(e => e.Level == LogLevel.Warning).Should().ContainSingle().Which.Message.Should().Contain("connection refused");
        logs.Entries.Where(e => e.Level == LogLevel.Debug).Should().HaveCount(2).And.OnlyContain(e => e.Exception is HttpRequestException);
    }

    [Fact]
    public async Task PerturbAsync_RequestTimesOut_FallsBackWithoutThrowing()
    {
        var fallback = new RecordingPerturber();
        var options = new ChatClientPerturberOptions { MaxAttempts = 1, RequestTimeout = TimeSpan.FromMilliseconds(50) };
        IPerturber perturber = Perturbers.CreateChatClient(FakeChatClient.Hangs(), fallback, options);

        PerturbedSample twin = await perturber.PerturbAsync(Sample, 0);

        twin.Text.Should().Be(RecordingPerturber.Marker);
    }

    [Fact]
    public async Task PerturbAsync_CancelledDuringRequest_PropagatesWithoutFallback()
    {
        var fallback = new RecordingPerturber();
        var client = FakeChatClient.Hangs();
        IPerturber perturber = Perturbers.CreateChatClient(client, fallback);
        using var cts = new CancellationTokenSource();

        Task<PerturbedSample> run = perturber.PerturbAsync(Sample, 0, cts.Token).AsTask();
        await WaitUntil(() => !client.Requests.IsEmpty);
        await cts.CancelAsync();
        Func<Task> act = () => run;

        await act.Should().ThrowAsync<OperationCanceledException>();
        fallback.Calls.Should().Be(0);
        client.Requests.Should().ContainSingle("a cancelled request is not retried");
    }

    [Fact]
    public async Task PerturbAsync_AlreadyCancelled_ThrowsWithoutRequest()
    {
        var client = FakeChatClient.Answers(Sentence);
        var fallback = new RecordingPerturber();
        IPerturber perturber = Perturbers.CreateChatClient(client, fallback);

        Func<Task> act = async () => await perturber.PerturbAsync(Sample, 0, new CancellationToken(canceled: true));

        await act.Should().ThrowAsync<OperationCanceledException>();
        client.Requests.Should().BeEmpty();
        fallback.Calls.Should().Be(0);
    }

    [Fact]
    public async Task PerturbAsync_SameTextAndSeed_ComesFromTheCache()
    {
        var client = FakeChatClient.Answers(Sentence.Replace("later", "alter", StringComparison.Ordinal), "should not be asked");
        IPerturber perturber = Perturbers.CreateChatClient(client, new RecordingPerturber(), new ChatClientPerturberOptions { Kinds = [PerturbationKind.Swap] });

        PerturbedSample first = await perturber.PerturbAsync(Sample, 9);
        var other = new CalibrationSample(11, Sentence);
        PerturbedSample second = await perturber.PerturbAsync(other, 9);

        client.Requests.Should().ContainSingle();
        second.Original.Should().BeSameAs(other);
        second.Text.Should().Be(first.Text);
        second.Edits.Should().Equal(first.Edits);
    }

    [Fact]
    public async Task PerturbAsync_Seed_PicksTheKindDeterministically()
    {
        var kinds = new List<PerturbationKind>();
        for (int seed = 0; seed < 40; seed++)
        {
            var client = FakeChatClient.Answers("x");
            var options = new ChatClientPerturberOptions { MaxAttempts = 1 };
            await Perturbers.CreateChatClient(client, new RecordingPerturber(), options).PerturbAsync(Sample, seed);
            string prompt = client.Requests.Single().Prompt;
            kinds.Add(Enum.GetValues<PerturbationKind>().Single(k => prompt == ChatClientPerturberConstants.DefaultTemplate(k).Replace("{text}", Sentence, StringComparison.Ordinal)));

            var again = FakeChatClient.Answers("x");
            await Perturbers.CreateChatClient(again, new RecordingPerturber(), options).PerturbAsync(Sample, seed);
            again.Requests.Single().Prompt.Should().Be(prompt, "the same seed asks for the same kind");
        }

        kinds.Distinct().Should().BeEquivalentTo(ChatClientPerturberConstants.DefaultKinds, "forty seeds ask for every kind");
    }

    [Fact]
    public async Task PerturbAsync_WithLexicon_MarksRealWordsAndCanRequireThem()
    {
        Lexicon lexicon = Lexicon.FromWords(["alter", "the"]);
        string answer = Sentence.Replace("happy", "hapyp", StringComparison.Ordinal);

        PerturbedSample loose = await Perturbers.CreateChatClient(FakeChatClient.Answers(answer), new RecordingPerturber(),
            new ChatClientPerturberOptions { Kinds = [PerturbationKind.Swap], Lexicon = lexicon }).PerturbAsync(Sample, 0);
        PerturbedSample real = await Perturbers.CreateChatClient(FakeChatClient.Answers(Sentence.Replace("later", "alter", StringComparison.Ordinal)), new RecordingPerturber(),
            new ChatClientPerturberOptions { Kinds = [PerturbationKind.Swap], Lexicon = lexicon }).PerturbAsync(Sample, 0);
        PerturbedSample strict = await Perturbers.CreateChatClient(FakeChatClient.Answers(answer), new RecordingPerturber(),
            new ChatClientPerturberOptions { Kinds = [PerturbationKind.Swap], Lexicon = lexicon, RequireRealWord = true, MaxAttempts = 1 }).PerturbAsync(Sample, 0);

        loose.Edits.Single().IsRealWord.Should().BeFalse();
        real.Edits.Single().IsRealWord.Should().BeTrue();
        strict.Text.Should().Be(RecordingPerturber.Marker);
    }

    [Fact]
    public async Task PerturbAsync_BlankSample_FallsBackWithoutRequest()
    {
        var client = FakeChatClient.Answers("anything");
        var fallback = new RecordingPerturber();

        PerturbedSample twin = await Perturbers.CreateChatClient(client, fallback).PerturbAsync(new CalibrationSample(0, "   "), 0);

        twin.Text.Should().Be(RecordingPerturber.Marker);
        client.Requests.Should().BeEmpty();
    }

    [Fact]
    public void CreateChatClient_InvalidOptions_ThrowsListingEveryProblem()
    {
        var options = new ChatClientPerturberOptions
        {
            Kinds = [],
            MaxAttempts = 0,
            RequestTimeout = TimeSpan.Zero,
            RequireRealWord = true,
            PromptTemplates = { [PerturbationKind.Swap] = "no placeholder here" },
        };

        Action act = () => Perturbers.CreateChatClient(FakeChatClient.Answers("x"), new RecordingPerturber(), options);

        act.Should().Throw<OptionsValidationException>().Which.Failures.Should().HaveCount(5)
            .And.Contain(f => f.Contains("Kinds", StringComparison.Ordinal))
            .And.Contain(f => f.Contains("MaxAttempts", StringComparison.Ordinal))
            .And.Contain(f => f.Contains("RequestTimeout", StringComparison.Ordinal))
            .And.Contain(f => f.Contains("RequireRealWord", StringComparison.Ordinal))
            .And.Contain(f => f.Contains("PromptTemplates[Swap]", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("later", "alter", PerturbationKind.Swap)]
    [InlineData("happy", "nappy", PerturbationKind.Replace)]
    [InlineData("host", "ghost", PerturbationKind.Insert)]
    [InlineData("car", "carr", PerturbationKind.Insert)]
    [InlineData("bread", "bred", PerturbationKind.Delete)]
    [InlineData("later", "later", null)]
    [InlineData("later", "lover", null)]
    [InlineData("later", "latter!", null)]
    [InlineData("abcd", "badc", null)]
    public void Classify_WordPair_GivesTheSingleEditKind(string before, string after, PerturbationKind? expected) =>
        ChatAnswerValidator.Classify(before, after).Should().Be(expected);

    [Fact]
    public async Task UseChatClientPerturber_Container_MakesTheTwinsOfARun()
    {
        var client = FakeChatClient.Rewrites(text => text.Replace("Later", "Alter", StringComparison.Ordinal));
        var seenTwins = new List<string>();
        var services = new ServiceCollection();
        services.AddPip(o =>
        {
            o.Metric = "twin-reader";
            o.Target = PruningTarget.LayerCount(1);
            o.PerturbationSets = 2;
        }).AddMetric(new TwinReadingMetric(seenTwins)).UseChatClientPerturber(client, o => o.Kinds = [PerturbationKind.Swap]);
        using ServiceProvider provider = services.BuildServiceProvider();

        PruningReport report = await provider.GetRequiredService<IPruningPipelineFactory>().Create().RunAsync(new FakeModel(4), Texts.Samples(2));

        report.Settings.Perturber.Should().Be(ChatClientPerturberConstants.Name);
        client.Requests.Should().NotBeEmpty();
        seenTwins.Should().NotBeEmpty().And.OnlyContain(t => t.Contains("Alter that summer", StringComparison.Ordinal));
    }

    [Fact]
    public void Create_ChatPerturberWithoutChatClient_ThrowsNamingTheFix()
    {
        var services = new ServiceCollection();
        services.AddPip(o => o.Metric = "twin-reader").AddMetric(new TwinReadingMetric([])).UseChatClientPerturber();
        using ServiceProvider provider = services.BuildServiceProvider();

        Action act = () => provider.GetRequiredService<IPruningPipelineFactory>().Create();

        act.Should().Throw<InvalidOperationException>().WithMessage("*IChatClient*");
    }

    private static async Task WaitUntil(Func<bool> condition)
    {
        for (int i = 0; i < 500 && !condition(); i++)
        {
            await Task.Delay(10);
        }

        condition().Should().BeTrue();
    }

    /// <summary>A fallback that marks its twins and counts its calls.</summary>
    private sealed class RecordingPerturber : IPerturber
    {
        public const string Marker = "FALLBACK";
        private int _calls;

        public int Calls => _calls;

        public List<int> Seeds { get; } = [];

        public string Name => "test-fallback";

        public ValueTask<PerturbedSample> PerturbAsync(CalibrationSample sample, int seed, CancellationToken cancellationToken = default)
        {
            Interlocked.Increment(ref _calls);
            lock (Seeds)
            {
                Seeds.Add(seed);
            }

            return ValueTask.FromResult(new PerturbedSample(sample, Marker, []));
        }
    }

    /// <summary>A metric that uses perturbations and records the twins' texts; it scores layers by their original index.</summary>
    private sealed class TwinReadingMetric(List<string> seen) : IImportanceMetric
    {
        public string Name => "twin-reader";

        public bool UsesPerturbations => true;

        public ValueTask<LayerScores> ScoreAsync(ImportanceRequest request, CancellationToken cancellationToken = default)
        {
            lock (seen)
            {
                seen.AddRange(request.PerturbationSets.SelectMany(set => set).Select(t => t.Text));
            }

            double[] scores = [.. request.Model.OriginalLayerIndices.Select(o => (double)o)];
            IReadOnlyList<IReadOnlyList<double>> perSet = [.. request.PerturbationSets.Select(_ => (IReadOnlyList<double>)scores)];
            return ValueTask.FromResult(new LayerScores(scores, perSet));
        }
    }

    /// <summary>A logger that keeps every entry.</summary>
    private sealed class ListLogger : ILogger
    {
        public List<(LogLevel Level, string Message, Exception? Exception)> Entries { get; } = [];

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            lock (Entries)
            {
                Entries.Add((logLevel, formatter(state, exception), exception));
            }
        }
    }
}
